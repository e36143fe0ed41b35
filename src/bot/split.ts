// Splits text into Discord-sized messages (content is limited to 2000 characters). Cuts at a paragraph break,
// else a line break, else a space, else anywhere (never inside a surrogate pair); a cut inside a ``` code block
// closes the block and reopens it, with its language, at the top of the next part, so every part renders.
// The split of a growing text is stable: once a part is complete it never changes as more text arrives, which
// lets a streamed answer freeze a full message and continue in the next one.

export const DISCORD_CONTENT_LIMIT = 2000;
/** parts are cut below Discord's limit so a short header or a fence fits beside them */
export const DEFAULT_PART_LIMIT = 1900;

const FENCE = '```';
const CLOSE = `\n${FENCE}`;

/** The fence opener (e.g. "```python") left open at the end of `text`, or null. */
function openFence(text: string): string | null {
  let open: string | null = null;
  for (const line of text.split('\n')) {
    const trimmed = line.trimStart();
    if (!trimmed.startsWith(FENCE)) continue;
    open = open === null ? trimmed.slice(0, 40) : null;
  }
  return open;
}

function cutPoint(text: string, budget: number): number {
  const window = text.slice(0, budget + 1);
  const floor = Math.floor(budget / 2);
  for (const sep of ['\n\n', '\n', ' ']) {
    const at = window.lastIndexOf(sep, budget - sep.length);
    if (at >= floor) return at + sep.length;
  }
  const code = text.charCodeAt(budget - 1);
  return code >= 0xd800 && code <= 0xdbff ? budget - 1 : budget;
}

export function splitMessage(text: string, limit = DEFAULT_PART_LIMIT): string[] {
  if (limit < 100) throw new RangeError('part limit must be at least 100 characters');
  const parts: string[] = [];
  let rest = text;
  let prefix = '';
  while (prefix.length + rest.length > limit) {
    const budget = limit - prefix.length - CLOSE.length;
    const cut = cutPoint(rest, budget);
    let part = prefix + rest.slice(0, cut);
    rest = rest.slice(cut);
    const fence = openFence(part);
    if (fence !== null) part = part.replace(/\n?$/, '') + CLOSE;
    parts.push(part);
    prefix = fence !== null ? `${fence}\n` : '';
  }
  parts.push(prefix + rest);
  return parts;
}
