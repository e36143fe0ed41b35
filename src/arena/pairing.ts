// Who plays in a battle: the adapters the caller named, the rest drawn at random with weights 1/√(1 + votes) so
// adapters with few votes get more battles, among adapters of the same base model (one engine serves one base
// model; an unknown base model is taken to match). Then a coin flip decides which one answers as A.
import { InvalidInputError, NotFoundError } from '../errors.js';
import { sameBaseModel } from '../formats/peft.js';
import type { Uniform } from './random.js';
import type { ArenaAdapter, Side } from './types.js';

export interface PairRequest {
  a?: string | undefined;
  b?: string | undefined;
}

function sameBase(x: ArenaAdapter, y: ArenaAdapter): boolean {
  return x.baseModel === null || y.baseModel === null || sameBaseModel(x.baseModel, y.baseModel);
}

function pick(pool: readonly ArenaAdapter[], votes: ReadonlyMap<string, number>, uniform: Uniform): ArenaAdapter {
  const weights = pool.map((adapter) => 1 / Math.sqrt(1 + (votes.get(adapter.name) ?? 0)));
  let u = uniform() * weights.reduce((s, w) => s + w, 0);
  for (let k = 0; k < pool.length; k++) {
    u -= weights[k]!;
    if (u < 0) return pool[k]!;
  }
  return pool[pool.length - 1]!;
}

function find(adapters: readonly ArenaAdapter[], name: string): ArenaAdapter {
  const adapter = adapters.find((x) => x.name === name);
  if (!adapter) throw new NotFoundError(`no adapter named "${name}": GET /v1/adapters lists the registered ones`);
  return adapter;
}

export function choosePair(
  adapters: readonly ArenaAdapter[],
  votes: ReadonlyMap<string, number>,
  request: PairRequest,
  uniform: Uniform,
): Record<Side, ArenaAdapter> {
  const named = [request.a, request.b].filter((n): n is string => n !== undefined).map((n) => find(adapters, n));
  if (named.length === 2 && named[0]!.name === named[1]!.name) {
    throw new InvalidInputError(`a and b are both "${named[0]!.name}": a battle needs two different adapters`);
  }
  if (named.length === 2 && !sameBase(named[0]!, named[1]!)) {
    throw new InvalidInputError(
      `"${named[0]!.name}" (base ${named[0]!.baseModel}) and "${named[1]!.name}" (base ${named[1]!.baseModel}) have different base models`,
    );
  }
  const chosen = [...named];
  while (chosen.length < 2) {
    const pool = adapters.filter(
      (x) =>
        !chosen.some((c) => c.name === x.name) &&
        chosen.every((c) => sameBase(c, x)) &&
        // a first pick must have a possible opponent
        (chosen.length > 0 || adapters.some((y) => y.name !== x.name && sameBase(x, y))),
    );
    if (pool.length === 0) {
      throw new InvalidInputError(
        chosen.length === 0
          ? `a battle needs two registered adapters of the same base model (${adapters.length} registered)`
          : `no other registered adapter has the base model of "${chosen[0]!.name}" (${chosen[0]!.baseModel})`,
      );
    }
    chosen.push(pick(pool, votes, uniform));
  }
  const [first, second] = chosen as [ArenaAdapter, ArenaAdapter];
  return uniform() < 0.5 ? { A: first, B: second } : { A: second, B: first };
}
