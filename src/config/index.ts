// One zod schema for every setting. Sources, later ones winning: the schema's defaults, `config/default.yaml`,
// the file named by LORAFORGE_CONFIG, environment variables (table below), then explicit overrides from the CLI.
// Each process reads it once in its composition root and passes the parts down.
import { readFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { InvalidInputError } from '../errors.js';

const port = z.coerce.number().int().min(0).max(65535);

export const ConfigSchema = z.object({
  /** Root of everything loraforge writes: adapters/, models/, tmp/. */
  dataDir: z.string().default('./data'),
  log: z
    .object({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      /** pretty lines on a terminal, JSON otherwise; 'auto' decides by whether stdout is a TTY */
      format: z.enum(['auto', 'json', 'pretty']).default('auto'),
    })
    .prefault({}),
  redis: z
    .object({
      url: z.string().default('redis://127.0.0.1:6379'),
      /** every key loraforge writes starts with this; tests use their own */
      prefix: z.string().min(1).default('loraforge'),
      /** `loraforge all` / `npm start` only: start a local redis-server when nothing answers at `url` */
      autoStart: z.boolean().default(true),
    })
    .prefault({}),
  server: z
    .object({
      host: z.string().default('127.0.0.1'),
      port: port.default(8080),
      /** bearer token required for writes (and reads when `authReads`); unset = no auth (local use only) */
      authToken: z.string().min(1).optional(),
      authReads: z.boolean().default(false),
      /** requests per client per minute */
      rateLimitPerMinute: z.coerce.number().int().positive().default(600),
      jsonBodyLimit: z.string().default('1mb'),
      uploadLimitBytes: z.coerce.number().int().positive().default(2 * 1024 ** 3),
      /** an uploaded archive may expand to at most this many times its size (past 16 MiB): archive bombs */
      archiveMaxRatio: z.coerce.number().positive().default(100),
      /** entries an uploaded archive may hold (a PEFT dir has two files; a training output dir a few dozen) */
      archiveMaxEntries: z.coerce.number().int().positive().default(1000),
      /** adapters may be registered from paths under this directory only; unset = registering by path is off */
      importDir: z.string().optional(),
    })
    .prefault({}),
  worker: z
    .object({
      concurrency: z.coerce.number().int().min(1).max(64).default(1),
      /** a merge whose worker died is retried after about this long (BullMQ job lock) */
      lockSeconds: z.coerce.number().positive().default(30),
      /** on SIGTERM, active merges may finish within this time; then they go back to the queue */
      shutdownGraceSeconds: z.coerce.number().min(0).default(30),
      /** attempts per merge for transient failures (bad input is never retried) */
      attempts: z.coerce.number().int().min(1).max(20).default(3),
      /**
       * a merge whose worker died (killed, out of memory, machine gone) runs again this many times; the next death
       * fails it for good, so a merge that kills every worker that takes it cannot take them all down in turn
       */
      maxStalledCount: z.coerce.number().int().min(0).max(1000).default(5),
    })
    .prefault({}),
  /** the merge engine (CLI merges and queue workers alike) */
  merge: z
    .object({
      /** where the heavy matrix products run: cpu (MLAS), or cuda when onnxruntime's CUDA provider is installed (falls back to cpu) */
      device: z.enum(['cpu', 'cuda']).default('cpu'),
      /** matmul threads; unset = the number of physical cores */
      threads: z.coerce.number().int().min(1).max(256).optional(),
      /** memory for one module's dense ΔW tiles in ties/dare/magnitude merges (MiB) */
      denseCacheMiB: z.coerce.number().int().min(16).default(1024),
    })
    .prefault({}),
  inference: z
    .object({
      /** serve a model from the API process (`loraforge serve`, `loraforge all`) */
      enabled: z.boolean().default(true),
      /** HF checkpoint dir to serve; unset = the trained demo model in assets/demo */
      model: z.string().optional(),
      /** the id the base model is served under; default: the checkpoint's name */
      modelId: z.string().optional(),
      /** ONNX Runtime intra-op threads; 0 = the machine's available parallelism */
      threads: z.coerce.number().int().min(0).max(1024).default(0),
      /** cuda needs onnxruntime-node installed with ONNXRUNTIME_NODE_INSTALL=cuda12; falls back to cpu with a warning */
      executionProvider: z.enum(['cpu', 'cuda']).default('cpu'),
      /**
       * let ORT's threads spin between the kernels of a run rather than sleep and be woken for each (they stop when
       * the run returns): decode 0-8% and four streams 5-12% faster; the HTTP thread's p99 lateness +0.5 ms
       */
      spinning: z.boolean().default(true),
      /** sequences decoded together in one step */
      maxBatch: z.coerce.number().int().min(1).max(256).default(8),
      /** requests waiting beyond the running batch; more get 429 with Retry-After */
      maxQueue: z.coerce.number().int().min(0).max(100_000).default(64),
      /** longest piece of one prompt prefilled per step (long prompts are chunked so running streams keep going) */
      prefillChunk: z.coerce.number().int().min(1).default(512),
      /** most tokens (rows x padded length) in one batched prefill */
      prefillTokenBudget: z.coerce.number().int().min(1).default(2048),
      /** KV cache capacity grows and shrinks in steps of this many positions */
      kvChunk: z.coerce.number().int().min(1).default(128),
    })
    .prefault({}),
  /** `loraforge build-model` defaults: how a checkpoint becomes the ONNX model the engine serves */
  builder: z
    .object({
      /** int4 (4-bit weights, the fast choice on CPU) or fp32 */
      dtype: z.enum(['fp32', 'int4']).default('int4'),
      /**
       * projections that take LoRA adapters: any of q,k,v,qkv,o,gate,up,gate_up,down (comma list in the environment;
       * q/k/v mean the fused qkv where a model fuses them). Unset: q,k,v,o, or for the demo model what its adapters
       * were trained on
       */
      targets: z
        .preprocess((v) => (typeof v === 'string' ? v.split(',').map((t) => t.trim()).filter(Boolean) : v), z.array(z.enum(['q', 'k', 'v', 'qkv', 'o', 'gate', 'up', 'gate_up', 'down'])).min(1))
        .optional(),
      /** largest adapter rank the serving pool holds */
      maxRank: z.coerce.number().int().min(1).max(4096).default(64),
      /** adapter slots in the serving pool, slot 0 ("no adapter") included */
      slots: z.coerce.number().int().min(2).max(1024).default(8),
      /**
       * int4 weights in blocks of this many (16–256, a power of 2): 32 has llama.cpp Q4_0's block; 128 runs prefill
       * 1.2–1.4× and decode up to 1.2× faster on CPU, at about 1.2× the quantization error (docs/BENCHMARKS.md)
       */
      int4BlockSize: z.coerce
        .number()
        .int()
        .refine((n) => n >= 16 && n <= 256 && (n & (n - 1)) === 0, 'a power of 2 from 16 to 256')
        .default(32),
    })
    .prefault({}),
  bot: z
    .object({
      token: z.string().min(1).optional(),
      applicationId: z.string().optional(),
      guildId: z.string().optional(),
      /** role id (or name) needed to register, remove, merge and cancel */
      operatorRole: z.string().optional(),
      /** the API the bot talks to */
      apiUrl: z.string().default('http://127.0.0.1:8080'),
      /** bearer token for the API; defaults to server.authToken (LORAFORGE_API_TOKEN) */
      apiToken: z.string().optional(),
      /** least time between two edits of one Discord message (streamed answers, merge progress) */
      editIntervalMs: z.coerce.number().int().min(500).default(1500),
      /** how often adapter-name autocomplete re-reads the registry */
      adapterRefreshSeconds: z.coerce.number().positive().default(30),
      /** largest adapter archive accepted as a Discord attachment */
      maxUploadBytes: z.coerce.number().int().positive().default(25 * 1024 * 1024),
      /** rewritten every 30 s while connected to Discord; `loraforge healthcheck bot` reads its age */
      heartbeatFile: z.string().default(path.join(os.tmpdir(), 'loraforge-bot.heartbeat')),
    })
    .prefault({}),
  arena: z
    .object({
      /** a battle takes votes for this long after it is created, unless closed earlier */
      battleTtlSeconds: z.coerce.number().int().positive().default(86_400),
      /** refuse votes by an adapter's owner (its registry `registeredBy`) on battles where that adapter plays */
      excludeOwnerVotes: z.boolean().default(false),
      /** adapters with fewer counted votes are fitted but left off the leaderboard table */
      minVotes: z.coerce.number().int().min(0).default(10),
      /** bootstrap rounds for the 95% intervals (0: no intervals) and the seed that makes them reproducible */
      bootstrapRounds: z.coerce.number().int().min(0).max(10_000).default(200),
      bootstrapSeed: z.coerce.number().int().default(0),
      /** ratings are shifted so this adapter sits at `rating`; without one (or when it has no votes), the table's mean does */
      anchor: z
        .object({ adapter: z.string().min(1).optional(), rating: z.coerce.number().default(1000) })
        .prefault({}),
      /** 'flag': a battle whose answer names an adapter or the base model is shown but its votes do not count */
      identityCheck: z.enum(['flag', 'off']).default('flag'),
      /** words never treated as revealing (e.g. a name part like "code" that answers use for other reasons) */
      identityAllow: z.array(z.string().min(1)).default([]),
      /** sampling settings of battle answers when a request gives none (the seed is drawn per battle) */
      sampling: z
        .object({
          temperature: z.coerce.number().min(0).max(5).default(0.7),
          topP: z.coerce.number().gt(0).max(1).default(0.95),
          maxTokens: z.coerce.number().int().min(1).max(8192).default(256),
        })
        .prefault({}),
    })
    .prefault({}),
  /** evals and merge sweeps (docs/eval.md) */
  eval: z
    .object({
      /** suites that requests name are read from here; default: the built-in suites (config/suites) */
      suitesDir: z.string().optional(),
      /** sweeps: merges queued ahead of the point being scored */
      mergesAhead: z.coerce.number().int().min(1).max(16).default(2),
      /** attempts of an eval or sweep job on transient failures (a sweep resumes from its finished points) */
      attempts: z.coerce.number().int().min(1).max(20).default(3),
      /** job lock: the job of a process that died is taken up again after about this long */
      lockSeconds: z.coerce.number().int().min(1).max(3600).default(30),
      /** one scoring pass: at most this many rows and padded tokens, and this much memory for the [tokens, vocab] logits */
      scoreMaxBatch: z.coerce.number().int().min(1).max(4096).default(64),
      scoreMaxTokens: z.coerce.number().int().min(1).default(8192),
      scoreLogitsMiB: z.coerce.number().int().min(1).default(256),
      /** a finished merge is scored on the test part of the suites of its inputs' categories, shown on its status */
      autoEvalMerges: z.boolean().default(true),
    })
    .prefault({}),
});

export type Config = z.infer<typeof ConfigSchema>;

/** Environment variables and the setting each one sets. */
export const ENV_VARS: Record<string, string> = {
  LORAFORGE_DATA_DIR: 'dataDir',
  LORAFORGE_AUTO_EVAL_MERGES: 'eval.autoEvalMerges',
  LORAFORGE_LOG_LEVEL: 'log.level',
  LORAFORGE_LOG_FORMAT: 'log.format',
  REDIS_URL: 'redis.url',
  LORAFORGE_REDIS_PREFIX: 'redis.prefix',
  LORAFORGE_HOST: 'server.host',
  PORT: 'server.port',
  LORAFORGE_API_TOKEN: 'server.authToken',
  LORAFORGE_IMPORT_DIR: 'server.importDir',
  LORAFORGE_WORKER_CONCURRENCY: 'worker.concurrency',
  LORAFORGE_WORKER_SHUTDOWN_GRACE: 'worker.shutdownGraceSeconds',
  LORAFORGE_UPLOAD_LIMIT_BYTES: 'server.uploadLimitBytes',
  LORAFORGE_ARCHIVE_MAX_RATIO: 'server.archiveMaxRatio',
  LORAFORGE_ARCHIVE_MAX_ENTRIES: 'server.archiveMaxEntries',
  LORAFORGE_API_AUTH_READS: 'server.authReads',
  LORAFORGE_RATE_LIMIT: 'server.rateLimitPerMinute',
  LORAFORGE_WORKER_LOCK_SECONDS: 'worker.lockSeconds',
  LORAFORGE_WORKER_MAX_STALLED: 'worker.maxStalledCount',
  LORAFORGE_MERGE_DEVICE: 'merge.device',
  LORAFORGE_MERGE_THREADS: 'merge.threads',
  LORAFORGE_MODEL: 'inference.model',
  LORAFORGE_SUITES_DIR: 'eval.suitesDir',
  LORAFORGE_EVAL_LOCK_SECONDS: 'eval.lockSeconds',
  LORAFORGE_MODEL_ID: 'inference.modelId',
  LORAFORGE_THREADS: 'inference.threads',
  LORAFORGE_SPINNING: 'inference.spinning',
  LORAFORGE_EXECUTION_PROVIDER: 'inference.executionProvider',
  LORAFORGE_MAX_BATCH: 'inference.maxBatch',
  LORAFORGE_MAX_QUEUE: 'inference.maxQueue',
  LORAFORGE_BUILD_DTYPE: 'builder.dtype',
  LORAFORGE_LORA_TARGETS: 'builder.targets',
  LORAFORGE_LORA_MAX_RANK: 'builder.maxRank',
  LORAFORGE_LORA_SLOTS: 'builder.slots',
  LORAFORGE_BUILD_INT4_BLOCK_SIZE: 'builder.int4BlockSize',
  DISCORD_TOKEN: 'bot.token',
  DISCORD_APPLICATION_ID: 'bot.applicationId',
  DISCORD_GUILD_ID: 'bot.guildId',
  LORAFORGE_OPERATOR_ROLE: 'bot.operatorRole',
  LORAFORGE_API_URL: 'bot.apiUrl',
  LORAFORGE_ARENA_BATTLE_TTL: 'arena.battleTtlSeconds',
  LORAFORGE_ARENA_EXCLUDE_OWNERS: 'arena.excludeOwnerVotes',
  LORAFORGE_ARENA_MIN_VOTES: 'arena.minVotes',
  LORAFORGE_ARENA_ANCHOR: 'arena.anchor.adapter',
};

type Tree = { [key: string]: unknown };

function setPath(tree: Tree, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = tree;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    node = next && typeof next === 'object' ? (next as Tree) : (node[key] = {});
  }
  node[keys[keys.length - 1]!] = value;
}

function deepMerge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] =
      value && typeof value === 'object' && !Array.isArray(value) && prev && typeof prev === 'object' && !Array.isArray(prev)
        ? deepMerge(prev as Tree, value as Tree)
        : value;
  }
  return out;
}

function readYaml(file: string): Tree {
  try {
    const parsed: unknown = parseYaml(readFileSync(file, 'utf8'));
    if (parsed == null) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('the top level must be a mapping');
    return parsed as Tree;
  } catch (err) {
    throw new InvalidInputError(`config file ${file}: ${(err as Error).message}`);
  }
}

function coerceEnv(value: string): unknown {
  if (value === 'true') return true;
  if (value === 'false') return false;
  return value;
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** directory holding `default.yaml`; defaults to ./config when it exists */
  configDir?: string;
  overrides?: Tree;
}

export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  let tree: Tree = {};
  const configDir = options.configDir ?? path.resolve('config');
  const defaults = path.join(configDir, 'default.yaml');
  if (existsSync(defaults)) tree = deepMerge(tree, readYaml(defaults));
  if (env.LORAFORGE_CONFIG) tree = deepMerge(tree, readYaml(env.LORAFORGE_CONFIG));
  for (const [name, dotted] of Object.entries(ENV_VARS)) {
    const value = env[name];
    if (value !== undefined && value !== '') setPath(tree, dotted, coerceEnv(value));
  }
  if (options.overrides) tree = deepMerge(tree, options.overrides);
  return parseConfig(tree);
}

export function parseConfig(tree: unknown): Config {
  const result = ConfigSchema.safeParse(tree);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new InvalidInputError(`invalid configuration: ${lines.join('; ')}`, result.error.issues);
  }
  return result.data;
}
