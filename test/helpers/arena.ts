// Simulated arena votes from known strengths, for the rating tests and bench/arena.ts. Each battle draws a pair
// uniformly, a coin flip for the sides, and an outcome whose expected score for side A is exactly the
// Bradley–Terry probability 1 / (1 + 10^((R_B − R_A)/400)); ties take a share of it, counted half either way.
import { seededUniform } from '../../src/arena/random.js';
import type { Choice, RatedVote } from '../../src/arena/types.js';

export interface SimulationOptions {
  /** true ratings by adapter name */
  ratings: Record<string, number>;
  votes: number;
  seed: number;
  /** fraction of the closer outcome's probability turned into ties; 0 = no ties */
  tieShare?: number;
  category?: string | null;
}

export function simulateVotes(options: SimulationOptions): RatedVote[] {
  const uniform = seededUniform(options.seed);
  const names = Object.keys(options.ratings);
  const tieShare = options.tieShare ?? 0.3;
  const votes: RatedVote[] = [];
  for (let v = 0; v < options.votes; v++) {
    const x = Math.floor(uniform() * names.length);
    let y = Math.floor(uniform() * (names.length - 1));
    if (y >= x) y++;
    const [a, b] = [names[x]!, names[y]!];
    const p = 1 / (1 + 10 ** ((options.ratings[b]! - options.ratings[a]!) / 400));
    const tie = 2 * tieShare * Math.min(p, 1 - p);
    const u = uniform();
    const choice: Choice = u < p - tie / 2 ? 'A' : u < p + tie / 2 ? (uniform() < 0.5 ? 'tie' : 'bad') : 'B';
    votes.push({ a, b, choice, at: v, category: options.category ?? null });
  }
  return votes;
}

/** `count` adapters with ratings spread evenly over `spread` points around 1000. */
export function spreadRatings(count: number, spread: number): Record<string, number> {
  return Object.fromEntries(
    Array.from({ length: count }, (_, i) => [`adapter-${String(i).padStart(2, '0')}`, 1000 - spread / 2 + (spread * i) / Math.max(1, count - 1)]),
  );
}
