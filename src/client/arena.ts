// /v1/battles and /v1/leaderboard from the client side: what the bot's /compare and /leaderboard call.
import type { BattleRequest, BattleView, Choice, Leaderboard, LeaderboardQuery, VoteResult } from '../arena/types.js';
import type { HttpClient, Query } from './http.js';

function boardQuery(query: LeaderboardQuery): Query {
  return { category: query.category ?? undefined, minVotes: query.minVotes };
}

export class ArenaClient {
  constructor(private readonly http: HttpClient) {}

  /**
   * Starts a battle: both answers, labelled A and B, names hidden. It waits for the generation of both answers:
   * `timeoutMs` replaces the client's default timeout; `signal` cancels it (and the generation on the server).
   */
  createBattle(request: BattleRequest, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<BattleView> {
    const { signal, timeoutMs } = options;
    if (timeoutMs === undefined) return this.http.json('POST', '/v1/battles', { json: request, signal });
    const timeout = AbortSignal.timeout(timeoutMs);
    return this.http.json('POST', '/v1/battles', {
      json: request,
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      noTimeout: true,
    });
  }

  /** A battle as `voter` may see it (their vote, and the names once they voted); names for all once closed. */
  battle(id: string, voter?: string): Promise<BattleView> {
    return this.http.json('GET', `/v1/battles/${encodeURIComponent(id)}`, { query: { voter } });
  }

  /** Casts or changes `voter`'s vote; the answer reveals the names to them. ConflictError once closed. */
  vote(id: string, voter: string, choice: Choice): Promise<VoteResult> {
    return this.http.json('POST', `/v1/battles/${encodeURIComponent(id)}/votes`, { json: { voter, choice } });
  }

  close(id: string): Promise<BattleView> {
    return this.http.json('POST', `/v1/battles/${encodeURIComponent(id)}/close`);
  }

  leaderboard(query: LeaderboardQuery = {}): Promise<Leaderboard> {
    return this.http.json('GET', '/v1/leaderboard', { query: boardQuery(query) });
  }

  /** The leaderboard chart, PNG bytes (attach it as a file). */
  async leaderboardPng(query: LeaderboardQuery = {}): Promise<Buffer> {
    const response = await this.http.send('GET', '/v1/leaderboard.png', { query: boardQuery(query), headers: { accept: 'image/png' } });
    return Buffer.from(await response.arrayBuffer());
  }
}
