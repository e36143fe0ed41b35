// Online Elo, as Chatbot Arena still shows it beside the Bradley–Terry rating: each vote in time order moves the
// two ratings by K·(outcome − expected). It depends on the order of votes and weighs recent ones more, which is
// why it is only a secondary column (FastChat's compute_elo: K = 4, base 10, scale 400, initial 1000).

export interface EloOptions {
  k?: number;
  base?: number;
  scale?: number;
  initial?: number;
}

export const ELO_DEFAULTS = { k: 4, base: 10, scale: 400, initial: 1000 } as const;

/** One game: `a` and `b` index the ratings, `score` is a's points (1 win, ½ tie, 0 loss). Games in time order. */
export interface EloGame {
  a: number;
  b: number;
  score: number;
}

export function onlineElo(n: number, games: Iterable<EloGame>, options: EloOptions = {}): Float64Array {
  const { k, base, scale, initial } = { ...ELO_DEFAULTS, ...options };
  const ratings = new Float64Array(n).fill(initial);
  for (const { a, b, score } of games) {
    const expected = 1 / (1 + base ** ((ratings[b]! - ratings[a]!) / scale));
    const update = k * (score - expected);
    ratings[a] = ratings[a]! + update;
    ratings[b] = ratings[b]! - update;
  }
  return ratings;
}
