// The engine's worker thread: ONNX Runtime's `run` blocks the thread it is called on, so the session, the KV
// cache, the adapter pool and the scheduler live here and the main thread stays free for HTTP.
import { parentPort, workerData } from 'node:worker_threads';
import { readAdapter } from '../../formats/peft.js';
import { archSpec, targetOfModule } from '../builder/arch.js';
import { checkManifest } from '../builder/manifest.js';
import { ModelTokenizer } from '../tokenizer.js';
import { EngineCore, type CoreSink, type ScoringSetup } from './core.js';
import { loadServedModel } from './served-model.js';
import { blendPrepared, prepareAdapter, type PreparedAdapter } from './lora-pool.js';
import { openSession, OrtRunner } from './ort-runner.js';
import { openScoreRunner, tokensForLogitBudget, type ScoreRunner } from './scorer.js';
import { serializeError, type FromWorker, type ToWorker, type WorkerInit } from './protocol.js';
import type { AdapterRef } from './types.js';

const port = parentPort!;
const init = workerData as WorkerInit;
const send = (message: FromWorker) => port.postMessage(message);

async function main(): Promise<void> {
  const model = await loadServedModel(init.modelDir);
  const opened = await openSession(model.onnxPath, init.session);
  checkManifest(opened.session, model.manifest);
  const tokenizer = await ModelTokenizer.load(init.modelDir);
  const runner = new OrtRunner(opened.session, model.spec);
  const sink: CoreSink = {
    tokens: (events) => send({ type: 'tokens', events }),
    finished: (event) => send({ type: 'finished', event }),
    failed: (id, error) => send({ type: 'failed', id, error: serializeError(error) }),
    scored: (result) => send({ type: 'scored', result }),
  };
  let scoreRunner: ScoreRunner | null = null;
  const scoring: ScoringSetup | null = model.manifest.graphs.score
    ? {
        open: async () => (scoreRunner = await openScoreRunner(init.modelDir, model.manifest, init.session)),
        limits: {
          maxBatch: init.scoring.maxBatch,
          maxTokens: Math.min(init.scoring.maxTokens, tokensForLogitBudget(model.spec.vocabSize, init.scoring.logitsBudgetBytes)),
        },
      }
    : null;
  const { spec } = model;
  const arch = archSpec(model.manifest.config.architecture);
  const targetOf = (module: string) => targetOfModule(arch, module);
  const loadAdapter = async (ref: AdapterRef): Promise<PreparedAdapter> =>
    ref.blend
      ? blendPrepared(await Promise.all(ref.blend.parts.map(loadAdapter)), ref.blend.weight, spec.maxRank, ref.label)
      : prepareAdapter(await readAdapter(ref.dir), spec.sites, { maxRank: spec.maxRank, targets: spec.targets, targetOf }, ref.label);
  const core = new EngineCore(
    spec,
    runner,
    tokenizer,
    loadAdapter,
    sink,
    init.core,
    scoring,
  );
  port.on('message', (message: ToWorker) => {
    switch (message.type) {
      case 'submit':
        core.submit(message.request);
        break;
      case 'score':
        core.submitScore(message.job);
        break;
      case 'cancel':
        core.cancel(message.id);
        break;
      case 'stats':
        send({ type: 'stats', call: message.call, stats: core.snapshot() });
        break;
      case 'shutdown':
        void core
          .stop()
          .then(() => Promise.all([runner.release(), scoreRunner?.release()]))
          .finally(() => {
            send({ type: 'closed' });
            port.close();
          });
        break;
    }
  });
  core.start();
  send({ type: 'ready', info: { provider: opened.provider, threads: opened.threads, fallbackReason: opened.fallbackReason } });
}

main().catch((err: unknown) => {
  send({ type: 'fatal', error: serializeError(err) });
  port.close();
});
