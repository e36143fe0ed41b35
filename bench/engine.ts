// The engine as the benchmarks run it: a model dir and PEFT adapter dirs, the engine's usual batching settings,
// every core, no spinning threads (the bench shares the machine with its own client).
import { InferenceEngine } from '../src/inference/engine/index.js';
import { staticAdapters } from '../src/inference/engine/static-adapters.js';
import { silentLogger } from '../src/util/log.js';

export function startBenchEngine(modelDir: string, adapters: Array<{ dir: string; name: string }>): Promise<InferenceEngine> {
  return InferenceEngine.start({
    modelDir,
    adapters: staticAdapters(adapters),
    log: silentLogger(),
    threads: 0,
    executionProvider: 'cpu',
    spinning: false,
    maxBatch: 8,
    maxQueue: 8,
    prefillChunk: 512,
    prefillTokenBudget: 2048,
    kvChunk: 128,
  });
}
