// The registry and the served models as the bot last saw them, for autocomplete: Discord gives an autocomplete
// interaction 3 s and no way to defer, so suggestions come from memory, never from a request on the hot path.
// Refreshed in the background every `refreshMs` and right after the bot itself changed the registry; the API
// validates every final value.
import type { LoraforgeClient } from '../client/index.js';
import type { Logger } from '../util/log.js';
import type { AdapterRecord } from './api-types.js';
import { formatBytes, truncate } from './format.js';
import type { Choice } from './router.js';

const MAX_CHOICES = 25;

/** Best matches first: names starting with the typed text, then names containing it. */
function rank(values: string[], typed: string): string[] {
  const t = typed.trim().toLowerCase();
  const starts = values.filter((v) => v.toLowerCase().startsWith(t));
  const contains = values.filter((v) => !v.toLowerCase().startsWith(t) && v.toLowerCase().includes(t));
  return [...starts, ...contains];
}

/** Completes the last item of a comma-separated list from `values`, skipping those already listed. */
function completeList(values: string[], typed: string): Choice[] {
  const cut = typed.lastIndexOf(',');
  const head = cut >= 0 ? typed.slice(0, cut + 1) : '';
  const done = new Set(head.split(',').map((s) => s.trim()).filter(Boolean));
  const prefix = head.length > 0 ? `${head.replace(/\s*$/, '')} ` : '';
  return rank(
    values.filter((v) => !done.has(v)),
    typed.slice(cut + 1).trim(),
  )
    .map((v) => `${prefix}${v}`)
    .filter((value) => value.length <= 100)
    .slice(0, MAX_CHOICES)
    .map((value) => ({ name: value, value }));
}

export class AdapterCache {
  readonly #api: Pick<LoraforgeClient, 'adapters' | 'inference' | 'evals'>;
  readonly #log: Logger;
  readonly #refreshMs: number;
  #adapters: AdapterRecord[] = [];
  #baseModel: string | null = null;
  #routers: Array<{ name: string; members: string[] }> = [];
  #suites: string[] = [];
  #timer: NodeJS.Timeout | null = null;
  #refreshing: Promise<void> | null = null;

  constructor(api: Pick<LoraforgeClient, 'adapters' | 'inference' | 'evals'>, log: Logger, refreshMs: number) {
    this.#api = api;
    this.#log = log;
    this.#refreshMs = refreshMs;
  }

  start(): void {
    void this.refresh();
    this.#timer = setInterval(() => void this.refresh(), this.#refreshMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Reloads both lists; a failure keeps the last ones (autocomplete goes on working while the API restarts). */
  refresh(): Promise<void> {
    this.#refreshing ??= Promise.allSettled([this.#api.adapters.list(), this.#api.inference.models(), this.#api.evals.suites()])
      .then(([adapters, models, suites]) => {
        if (adapters.status === 'fulfilled') this.#adapters = adapters.value;
        else this.#log.debug({ err: adapters.reason }, 'adapter list refresh failed; keeping the last one');
        // an API without a model engine has no /v1/models: only the registry is known then
        if (models.status === 'fulfilled') {
          this.#baseModel = models.value.find((m) => m.parent === null)?.id ?? null;
          this.#routers = models.value.flatMap((m) => (m.loraforge?.router ? [{ name: m.id, members: m.loraforge.members }] : []));
        }
        if (suites.status === 'fulfilled') this.#suites = suites.value;
      })
      .finally(() => {
        this.#refreshing = null;
      });
    return this.#refreshing;
  }

  /** The served base model's name, once known. */
  get baseModel(): string | null {
    return this.#baseModel;
  }

  get adapters(): readonly AdapterRecord[] {
    return this.#adapters;
  }

  /** Adapter names matching what the member typed, each with a hint of what it is. */
  names(typed: string): Choice[] {
    const byName = new Map(this.#adapters.map((a) => [a.name, a]));
    return rank([...byName.keys()], typed)
      .slice(0, MAX_CHOICES)
      .map((name) => {
        const a = byName.get(name)!;
        const kind = a.inputs?.length ? `merge of ${a.inputs.length}` : `r${a.rank}`;
        const about = a.description ? ` · ${a.description}` : '';
        return { name: truncate(`${name} (${kind}, ${formatBytes(a.bytes)})${about}`, 100), value: name };
      });
  }

  /** Routers matching what the member typed, each with its members. */
  routers(typed: string): Choice[] {
    const byName = new Map(this.#routers.map((r) => [r.name, r]));
    return rank([...byName.keys()], typed).map((name) => ({
      name: truncate(`${name} (🧭 router of ${byName.get(name)!.members.join(', ')})`, 100),
      value: name,
    }));
  }

  /** What can answer a prompt: the base model first, then every router and adapter. */
  models(typed: string): Choice[] {
    const base = this.#baseModel && this.#baseModel.toLowerCase().includes(typed.trim().toLowerCase())
      ? [{ name: truncate(`${this.#baseModel} (the base model, no adapter)`, 100), value: this.#baseModel }]
      : [];
    return [...base, ...this.routers(typed), ...this.names(typed)].slice(0, MAX_CHOICES);
  }

  /** What can play in a battle: routers and adapters (merges included). */
  contestants(typed: string): Choice[] {
    return [...this.routers(typed), ...this.names(typed)].slice(0, MAX_CHOICES);
  }

  /** Completes the last name of a comma-separated list ("code, li" → "code, linux-commands"). */
  nameList(typed: string): Choice[] {
    return completeList(
      this.#adapters.map((a) => a.name),
      typed,
    );
  }

  /** Completes the last suite name of a comma-separated list. */
  suites(typed: string): Choice[] {
    return completeList(this.#suites, typed);
  }

  /** Categories in use, for options that take one. */
  categories(typed: string): Choice[] {
    const all = [...new Set(this.#adapters.map((a) => a.category).filter((c): c is string => Boolean(c)))].sort();
    return rank(all, typed)
      .slice(0, MAX_CHOICES)
      .map((c) => ({ name: c, value: c }));
  }
}
