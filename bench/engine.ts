// The engine as the benchmarks run it: a model dir and PEFT adapter dirs, the engine's usual batching settings,
// every core, spinning threads during runs (the product's defaults).
import { parseConfig } from '../src/config/index.js';
import { InferenceEngine, type AdapterResolver, type StartOptions } from '../src/inference/engine/index.js';
import { staticAdapters } from '../src/inference/engine/static-adapters.js';
import { silentLogger } from '../src/util/log.js';

/** `adapters`: fixed adapter dirs, or a resolver for benches that register merges as they go. */
/** `overrides`: engine settings that differ from the benchmarks' usual ones (a variant measured beside them). */
export function startBenchEngine(
  modelDir: string,
  adapters: Array<{ dir: string; name: string }> | AdapterResolver,
  overrides: Partial<Pick<StartOptions, 'threads' | 'spinning' | 'maxBatch' | 'maxQueue' | 'prefillChunk' | 'prefillTokenBudget' | 'kvChunk' | 'routers'>> = {},
): Promise<InferenceEngine> {
  return InferenceEngine.start({
    modelDir,
    adapters: Array.isArray(adapters) ? staticAdapters(adapters) : adapters,
    log: silentLogger(),
    threads: 0,
    executionProvider: 'cpu',
    spinning: parseConfig({}).inference.spinning,
    maxBatch: 8,
    maxQueue: 8,
    prefillChunk: 512,
    prefillTokenBudget: 2048,
    kvChunk: 128,
    ...overrides,
  });
}
