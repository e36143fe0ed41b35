// A process that runs sweeps (the engine and an eval worker, as a `loraforge serve` process does), for the resume
// test: it is killed with SIGKILL mid-sweep and another one takes over. Settings come from the environment:
// EVAL_CHILD_PREFIX, EVAL_CHILD_DATA_DIR, EVAL_CHILD_MODEL_DIR.
import { openMerges, openRegistry, openRuntime, scoringSettings, startEvals } from '../../src/app.js';
import { parseConfig } from '../../src/config/index.js';
import { InferenceEngine } from '../../src/inference/engine/index.js';
import { createMetrics } from '../../src/server/metrics.js';
import { createLogger } from '../../src/util/log.js';
import { TEST_REDIS_URL } from '../helpers/redis.js';
import { registryAdapters } from './stack.js';

const env = (name: string) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const config = parseConfig({
  dataDir: env('EVAL_CHILD_DATA_DIR'),
  redis: { url: TEST_REDIS_URL, prefix: env('EVAL_CHILD_PREFIX') },
  inference: { threads: 1 },
  // a killed process's sweep is taken up by the next one after about this long
  eval: { lockSeconds: 2 },
});
const rt = await openRuntime(config, createLogger({ level: 'error', format: 'json' }));
const registry = openRegistry(rt);
const merges = await openMerges(rt, registry, createMetrics());
const engine = await InferenceEngine.start({
  ...config.inference,
  modelDir: env('EVAL_CHILD_MODEL_DIR'),
  adapters: registryAdapters(registry),
  log: rt.log,
  scoring: scoringSettings(config),
});
rt.lifecycle.add('inference engine', () => engine.close());
await startEvals(rt, { engine, registry, merges });
process.stdout.write('ready\n');
