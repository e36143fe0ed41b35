// Parsing and checking of the slash-command options the bot can check by itself, before it asks the API, so a
// mistake gets an immediate answer that says what to type instead. The API validates every final value again.
import { InvalidInputError } from '../errors.js';

/** `1,1,0.5` or `1 1 0.5` → [1, 1, 0.5]. */
export function parseWeights(text: string): number[] {
  const items = text.split(/[\s,;]+/).filter((s) => s.length > 0);
  if (items.length === 0) throw new InvalidInputError('weights: give one number per adapter, e.g. `weights:1,1,1,1`');
  return items.map((item) => {
    const value = Number(item);
    if (!Number.isFinite(value)) throw new InvalidInputError(`weights: \`${item}\` is not a number; write them like \`1,1,0.5\``);
    return value;
  });
}

/** `1,0.5,1;0.8,1,1` → one row of group factors per adapter (rows split by ";", numbers by "," or spaces). */
export function parseLayerWeights(text: string): number[][] {
  const rows = text.split(';').map((row) => row.split(/[\s,]+/).filter((s) => s.length > 0));
  if (rows.some((row) => row.length === 0)) throw new InvalidInputError('layer_weights: give a row of numbers per adapter, rows separated by `;`, e.g. `1,0.5,1;0.8,1,1`');
  return rows.map((row) =>
    row.map((item) => {
      const value = Number(item);
      if (!Number.isFinite(value)) throw new InvalidInputError(`layer_weights: \`${item}\` is not a number; write them like \`1,0.5,1;0.8,1,1\``);
      return value;
    }),
  );
}

/** `code, linux-commands` → ['code', 'linux-commands']; refuses a name listed twice. */
export function parseNameList(text: string): string[] {
  const names = text.split(/[\s,;]+/).filter((s) => s.length > 0);
  if (names.length === 0) throw new InvalidInputError('adapters: list the adapters to merge, e.g. `adapters:code,linux-commands`');
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) throw new InvalidInputError(`adapters: \`${name}\` is listed twice`);
    seen.add(name);
  }
  return names;
}

/** The fraction of each update kept by TIES, DARE and magnitude pruning. */
export function checkDensity(density: number): number {
  if (!(density > 0 && density <= 1)) {
    throw new InvalidInputError(`density must be in (0, 1], e.g. \`density:0.2\` keeps the largest 20% of each update (got ${density})`);
  }
  return density;
}

/** What the bot needs to know about a registered adapter to pick merge inputs. */
export interface MergeCandidate {
  name: string;
  baseModel: string | null;
  createdAt: string;
  /** set on adapters that are themselves merges */
  inputs?: unknown[];
}

/** Up to three registered names close to `name`, for "did you mean". */
export function suggestNames(name: string, known: string[], count = 3): string[] {
  const distance = (a: string, b: string): number => {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let diagonal = row[0]!;
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const above = row[j]!;
        row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
        diagonal = above;
      }
    }
    return row[b.length]!;
  };
  // a typo anywhere, or a misspelt start of a longer name ("pyton" → "python-automation")
  const closeness = (k: string): number => {
    if (k.includes(name) || name.includes(k)) return 0;
    const prefixes = [name.length - 1, name.length, name.length + 1].map((n) => distance(name, k.slice(0, n)));
    return Math.min(distance(name, k), ...prefixes);
  };
  return known
    .map((k) => ({ k, d: closeness(k) }))
    .filter(({ d }) => d <= Math.max(2, Math.floor(name.length / 3)))
    .sort((x, y) => x.d - y.d || x.k.localeCompare(y.k))
    .slice(0, count)
    .map(({ k }) => k);
}

export function unknownAdapterMessage(name: string, known: string[]): string {
  const close = suggestNames(name, known);
  const hint = close.length > 0 ? ` Did you mean ${close.map((n) => `\`${n}\``).join(', ')}?` : '';
  return `No adapter is registered as \`${name}\`.${hint} \`/adapter list\` shows them all.`;
}

/**
 * The adapters a merge takes: the ones named, in the order named, or else every registered adapter that is not
 * itself a merge, of the one base model they share, in registration order. The weights must match them one to one.
 */
export function resolveMergeInputs(registered: MergeCandidate[], named: string[] | null, weights: number[]): string[] {
  let inputs: string[];
  if (named !== null) {
    const known = registered.map((a) => a.name);
    const missing = named.find((n) => !known.includes(n));
    if (missing !== undefined) throw new InvalidInputError(unknownAdapterMessage(missing, known));
    inputs = named;
  } else {
    const originals = registered.filter((a) => !a.inputs || a.inputs.length === 0).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name));
    if (originals.length === 0) throw new InvalidInputError('No adapters are registered yet: add some with `/adapter register` first.');
    const bases = new Map<string, string[]>();
    for (const a of originals) {
      const base = a.baseModel ?? '(unknown base model)';
      bases.set(base, [...(bases.get(base) ?? []), a.name]);
    }
    if (bases.size > 1) {
      const groups = [...bases].map(([base, names]) => `${base}: ${names.join(', ')}`).join('; ');
      throw new InvalidInputError(`Adapters of ${bases.size} base models are registered (${groups}). Say which to merge with \`adapters:\`.`);
    }
    inputs = originals.map((a) => a.name);
  }
  if (inputs.length < 2) throw new InvalidInputError(`A merge needs at least two adapters; only \`${inputs[0]}\` is available. Register more or name them with \`adapters:\`.`);
  if (weights.length !== inputs.length) {
    const example = inputs.map(() => '1').join(',');
    throw new InvalidInputError(
      `${weights.length} weight${weights.length === 1 ? '' : 's'} for ${inputs.length} adapters (${inputs.join(', ')}): give one weight per adapter, e.g. \`weights:${example}\`.`,
    );
  }
  return inputs;
}
