// Chatbot Arena drops a battle when an answer names a model ("I am Vicuna..."): the voter could tell who wrote
// it. Here the revealing words are the two adapters' names, their parts (split at punctuation) and the base
// model's name and parts. A part shorter than three characters, a number, a generic word below, a word the
// operator allows (`arena.identityAllow`) or a word the prompt itself contains (answering what was asked reveals
// nothing) is not revealing. Matching is case-insensitive on whole words: "code" does not match "encode".
//
// The arena flags such a battle rather than redacting the answer: the voter still sees the whole answer and may
// vote, but the battle does not count towards the leaderboard (the vote response says so).

/** Parts of adapter names that describe the mechanism, not the adapter. */
const GENERIC = new Set(['lora', 'adapter', 'adapters', 'merge', 'merged', 'model', 'base', 'instruct', 'chat', 'the', 'and', 'for', 'with']);

const WORD = /[^\p{L}\p{N}]+/u;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function wordPattern(term: string): RegExp {
  return new RegExp(`(?<![\\p{L}\\p{N}])${escapeRegExp(term)}(?![\\p{L}\\p{N}])`, 'iu');
}

/** The words that would reveal one of `names` (or the base model) if an answer contained them. */
export function identityTerms(names: readonly string[], baseModel: string | null, allow: readonly string[] = []): string[] {
  const allowed = new Set(allow.map((w) => w.toLowerCase()));
  const terms = new Set<string>();
  const sources = [...names];
  if (baseModel) sources.push(baseModel, baseModel.split('/').pop()!);
  for (const source of sources) {
    const whole = source.toLowerCase();
    if (!allowed.has(whole)) terms.add(whole);
    for (const part of whole.split(WORD)) {
      if (part.length < 3 || /^\d+$/.test(part) || GENERIC.has(part) || allowed.has(part)) continue;
      terms.add(part);
    }
  }
  return [...terms].sort();
}

/** The terms that occur in any answer but not in the prompt. */
export function findIdentityLeaks(answers: readonly string[], prompt: string, terms: readonly string[]): string[] {
  return terms.filter((term) => {
    const pattern = wordPattern(term);
    return !pattern.test(prompt) && answers.some((answer) => pattern.test(answer));
  });
}
