// The engine as tests start it: fixed PEFT adapter dirs, one thread, no spinning, a small batch and queue, the
// usual prefill settings; `overrides` for what a test needs otherwise (a model id, routers, a bigger queue).
import { InferenceEngine, type StartOptions } from '../../src/inference/engine/index.js';
import { staticAdapters } from '../../src/inference/engine/static-adapters.js';
import { silentLogger } from '../../src/util/log.js';

export function startTestEngine(modelDir: string, adapters: Array<{ dir: string; name: string }>, overrides: Partial<StartOptions> = {}): Promise<InferenceEngine> {
  return InferenceEngine.start({
    modelDir,
    adapters: staticAdapters(adapters),
    log: silentLogger(),
    threads: 1,
    executionProvider: 'cpu',
    spinning: false,
    maxBatch: 4,
    maxQueue: 8,
    prefillChunk: 512,
    prefillTokenBudget: 2048,
    kvChunk: 16,
    ...overrides,
  });
}
