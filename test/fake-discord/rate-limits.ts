// Injected 429s. A rule answers matching requests with Discord's rate-limit response (status 429, `retry_after` in
// the body and the `Retry-After` / `X-RateLimit-*` headers). Two kinds: `count` rate-limits the next N matching
// requests (a storm), `limit`/`windowMs` rate-limits whatever exceeds N requests per window (a real bucket that
// sends no headers in advance, so only a client that paces itself stays under it).
// A request that arrives for a bucket (or, after a global 429, for anything) before its retry_after has passed
// is recorded as a violation: real Discord counts those towards the Cloudflare ban.

export interface RateLimitRuleSpec {
  /** HTTP method, upper case; any when absent */
  method?: string;
  /** matched against the decoded path after `/api/v10`; any when absent */
  path?: RegExp;
  /** seconds the client must wait */
  retryAfter: number;
  global?: boolean;
  scope?: 'user' | 'shared';
  /** rate-limit the next `count` matching requests */
  count?: number;
  /** or: allow `limit` matching requests per `windowMs`, 429 beyond */
  limit?: number;
  windowMs?: number;
}

export interface RateLimitDecision {
  retryAfter: number;
  global: boolean;
  scope: 'user' | 'shared';
  bucket: string;
  /** the client came back before an earlier retry_after had passed */
  violation: boolean;
}

interface Rule extends RateLimitRuleSpec {
  hits: number[];
  fired: number;
}

/** Discord groups routes into buckets by method and route with the message id abstracted. */
export function bucketOf(method: string, path: string): string {
  return `${method} ${path.replace(/\/messages\/(?:\d+|@original)/, '/messages/:id')}`;
}

/** Time the client is given beyond retry_after before an early request counts as a violation (timer slack). */
const SLACK_MS = 25;

export class RateLimiter {
  readonly #rules: Rule[] = [];
  readonly #blockedUntil = new Map<string, number>();
  #globalUntil = 0;

  inject(spec: RateLimitRuleSpec): () => void {
    if (spec.count === undefined && (spec.limit === undefined || spec.windowMs === undefined)) {
      throw new Error('rate-limit rule needs `count`, or `limit` and `windowMs`');
    }
    const rule: Rule = { ...spec, hits: [], fired: 0 };
    this.#rules.push(rule);
    return () => {
      const i = this.#rules.indexOf(rule);
      if (i >= 0) this.#rules.splice(i, 1);
    };
  }

  /** Removes every rule and forgets every pending retry_after window. */
  clear(): void {
    this.#rules.length = 0;
    this.#blockedUntil.clear();
    this.#globalUntil = 0;
  }

  /** Decides whether this request is rate-limited; `null` lets it through. */
  check(method: string, path: string, now: number, { exemptFromGlobal }: { exemptFromGlobal: boolean }): RateLimitDecision | null {
    const bucket = bucketOf(method, path);
    if (!exemptFromGlobal && now < this.#globalUntil - SLACK_MS) {
      return { retryAfter: (this.#globalUntil - now) / 1000, global: true, scope: 'user', bucket, violation: true };
    }
    const until = this.#blockedUntil.get(bucket) ?? 0;
    if (now < until - SLACK_MS) return { retryAfter: (until - now) / 1000, global: false, scope: 'user', bucket, violation: true };
    for (const rule of this.#rules) {
      if (rule.method && rule.method !== method) continue;
      if (rule.path && !rule.path.test(path)) continue;
      let limited: boolean;
      if (rule.count !== undefined) {
        limited = rule.fired < rule.count;
      } else {
        rule.hits = rule.hits.filter((t) => t > now - rule.windowMs!);
        limited = rule.hits.length >= rule.limit!;
        if (!limited) rule.hits.push(now);
      }
      if (!limited) continue;
      rule.fired += 1;
      const untilMs = now + rule.retryAfter * 1000;
      if (rule.global) this.#globalUntil = untilMs;
      else this.#blockedUntil.set(bucket, untilMs);
      return { retryAfter: rule.retryAfter, global: rule.global ?? false, scope: rule.scope ?? 'user', bucket, violation: false };
    }
    return null;
  }
}
