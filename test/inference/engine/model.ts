// A tiny random Llama checkpoint with the demo tokenizer, built into a real model dir, plus a harness that drives
// the engine core in-process (real ONNX Runtime session, real tokenizer) and collects its events.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeSafetensors } from '../../../src/formats/safetensors-writer.js';
import { buildModel } from '../../../src/inference/builder/index.js';
import { makeDemoTokenizer } from '../../../src/inference/demo-tokenizer.js';
import { EngineCore, type CoreOptions } from '../../../src/inference/engine/core.js';
import { openScoreRunner } from '../../../src/inference/engine/scorer.js';
import { transposeFactors, type PreparedAdapter } from '../../../src/inference/engine/lora-pool.js';
import { openSession, OrtRunner } from '../../../src/inference/engine/ort-runner.js';
import { loadServedModel } from '../../../src/inference/engine/served-model.js';
import type { FinishEvent, GroupRequest, ScoreJobResult, TokenEvent } from '../../../src/inference/engine/types.js';
import { GREEDY, type SamplingParams } from '../../../src/inference/engine/sampling.js';
import { ModelTokenizer } from '../../../src/inference/tokenizer.js';
import { randomCheckpointTensors, randomLora, writeCheckpoint } from '../checkpoints.js';
import type { RawConfig, ReferenceLora } from '../reference.js';

export interface TestModel {
  cfg: RawConfig;
  checkpointDir: string;
  modelDir: string;
  tensors: Map<string, Float32Array>;
  adapters: ReferenceLora[];
  eosTokenId: number;
  /** a temp dir holding all of the above: the caller removes it (`removeTestModel`) */
  root: string;
}

/** A 2-layer Llama (GQA 4:2, untied) over the demo tokenizer's vocabulary, and three random q/k/v/o adapters. */
export async function makeTestModel(
  options: { dtype?: 'fp32' | 'int4'; slots?: number; maxPositions?: number; maxRank?: number; /** also build the score graph */ score?: boolean } = {},
): Promise<TestModel> {
  const tok = makeDemoTokenizer();
  const cfg: RawConfig = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 64,
    intermediate_size: 96,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: tok.vocabSize,
    max_position_embeddings: options.maxPositions ?? 256,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
    hidden_act: 'silu',
    torch_dtype: 'float32',
    bos_token_id: tok.bosTokenId,
    eos_token_id: tok.eotTokenId,
  };
  const root = mkdtempSync(path.join(os.tmpdir(), 'lf-test-model-'));
  const checkpointDir = path.join(root, 'checkpoint');
  const list = randomCheckpointTensors(cfg, 11);
  let built: Awaited<ReturnType<typeof buildModel>>;
  try {
    await writeCheckpoint(checkpointDir, cfg, list);
    writeFileSync(path.join(checkpointDir, 'tokenizer.json'), JSON.stringify(tok.tokenizerJson));
    writeFileSync(path.join(checkpointDir, 'tokenizer_config.json'), JSON.stringify(tok.tokenizerConfig));
    built = await buildModel(checkpointDir, {
      dataDir: path.join(root, 'data'),
      dtype: options.dtype ?? 'fp32',
      slots: options.slots ?? 4,
      maxRank: options.maxRank ?? 8,
      heads: options.score ? ['generate', 'score'] : ['generate'],
    });
  } catch (err) {
    removeTestModel({ root });
    throw err;
  }
  const modules = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj'];
  return {
    cfg,
    checkpointDir,
    modelDir: built.dir,
    tensors: new Map(list.map((t) => [t.name, t.data])),
    // ranks 4, 8 and 2: the pool grows and pads
    adapters: [randomLora(cfg, modules, 4, 8, 101), randomLora(cfg, modules, 8, 8, 102), randomLora(cfg, modules.slice(0, 2), 2, 4, 103)],
    eosTokenId: tok.eotTokenId,
    root,
  };
}

/** Removes a test model's temp dir; safe on `undefined` (a beforeAll that failed before making it). */
export function removeTestModel(model: { root: string } | undefined): void {
  if (model) rmSync(model.root, { recursive: true, force: true });
}

/** A reference adapter laid out for the pool, as the engine does for a PEFT directory. */
export function prepared(model: { sites: { module: string }[] }, lora: ReferenceLora): PreparedAdapter {
  let rank = 0;
  const sites = model.sites.map((site) => {
    const m = lora.get(site.module);
    if (!m) return null;
    rank = Math.max(rank, m.rank);
    const [outF, inF] = [m.B.length / m.rank, m.A.length / m.rank];
    return transposeFactors(m.A, m.B, m.rank, inF, outF, m.scaling);
  });
  return { rank, sites };
}

export interface Collected {
  tokens: number[][];
  texts: string[];
  logprobs: number[][];
  finish: FinishEvent[];
  error: unknown;
  done: Promise<void>;
}

export class CoreHarness {
  private readonly results = new Map<string, Collected & { resolve: () => void; rows: number }>();
  private readonly scores = new Map<string, { resolve: (r: ScoreJobResult) => void; reject: (err: unknown) => void }>();
  private next = 0;
  loads = 0;

  private constructor(
    readonly core: EngineCore,
    readonly tokenizer: ModelTokenizer,
  ) {}

  /** `scoring`: pass limits when the model has a score graph (scoring jobs are refused otherwise) */
  static async open(model: TestModel, options: Partial<CoreOptions> = {}, scoring?: { maxBatch: number; maxTokens: number }): Promise<CoreHarness> {
    const served = await loadServedModel(model.modelDir);
    const { session } = await openSession(served.onnxPath, { threads: 1, executionProvider: 'cpu', spinning: false });
    const tokenizer = await ModelTokenizer.load(model.modelDir);
    let harness: CoreHarness | null = null;
    const core = new EngineCore(
      served.spec,
      new OrtRunner(session, served.spec),
      tokenizer,
      async (ref) => {
        harness!.loads++;
        return prepared(served.spec, model.adapters[Number(ref.key)]!);
      },
      {
        tokens: (events: TokenEvent[]) => {
          for (const e of events) {
            const r = harness!.results.get(e.id)!;
            r.tokens[e.index]!.push(e.token);
            r.texts[e.index] += e.text;
            if (e.logprob !== undefined) r.logprobs[e.index]!.push(e.logprob);
          }
        },
        finished: (event: FinishEvent) => {
          const r = harness!.results.get(event.id)!;
          r.finish[event.index] = event;
          r.texts[event.index] += event.text;
          if (r.finish.filter(Boolean).length === r.rows) r.resolve();
        },
        failed: (id: string, error: unknown) => {
          const s = harness!.scores.get(id);
          if (s) return s.reject(error);
          const r = harness!.results.get(id)!;
          r.error = error;
          r.resolve();
        },
        scored: (result: ScoreJobResult) => harness!.scores.get(result.id)!.resolve(result),
      },
      { maxBatch: 8, prefillChunk: 512, prefillTokenBudget: 2048, kvChunk: 16, ...options },
      scoring
        ? { open: () => openScoreRunner(model.modelDir, served.manifest, { threads: 1, executionProvider: 'cpu', spinning: false }), limits: scoring }
        : null,
    );
    harness = new CoreHarness(core, tokenizer);
    core.start();
    return harness;
  }

  /** Submits a group; adapter n of the test model is `{ adapter: n }`. */
  submit(
    rows: Array<{ prompt: number[]; adapter?: number; stream?: number }>,
    options: Partial<Omit<GroupRequest, 'id' | 'rows' | 'sampling'>> & { sampling?: Partial<SamplingParams> } = {},
  ): { id: string; result: Collected } {
    const id = `r${this.next++}`;
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const result = {
      tokens: rows.map(() => []),
      texts: rows.map(() => ''),
      logprobs: rows.map(() => []),
      finish: [],
      error: null,
      done,
      resolve,
      rows: rows.length,
    };
    this.results.set(id, result);
    this.core.submit({
      id,
      rows: rows.map((r) => ({
        promptIds: r.prompt,
        adapter: r.adapter === undefined ? null : { key: String(r.adapter), dir: '(test)', label: `adapter${r.adapter}` },
        stream: r.stream ?? 0,
      })),
      seed: 0,
      maxTokens: 8,
      stop: [],
      logprobs: null,
      ignoreEos: true,
      ...options,
      sampling: { ...GREEDY, ...options.sampling },
    });
    return { id, result };
  }

  /** Submits a scoring job; adapter n of the test model is `{ adapter: n }`. */
  score(rows: Array<{ ids: number[]; targetStart: number; adapter?: number }>): { id: string; result: Promise<ScoreJobResult> } {
    const id = `s${this.next++}`;
    const result = new Promise<ScoreJobResult>((resolve, reject) => this.scores.set(id, { resolve, reject }));
    this.core.submitScore({
      id,
      rows: rows.map((r) => ({
        ids: r.ids,
        targetStart: r.targetStart,
        adapter: r.adapter === undefined ? null : { key: String(r.adapter), dir: '(test)', label: `adapter${r.adapter}` },
      })),
    });
    return { id, result };
  }

  async close(): Promise<void> {
    await this.core.stop();
  }
}

/** Writes a reference adapter as a PEFT directory (adapter_config.json + adapter_model.safetensors). */
export async function writePeftAdapter(dir: string, lora: ReferenceLora, baseModel: string | null = null): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const first = [...lora.values()][0]!;
  const tensors = [...lora.entries()].flatMap(([module, m]) => [
    { name: `base_model.model.${module}.lora_A.weight`, dtype: 'F32' as const, shape: [m.rank, m.A.length / m.rank], data: m.A },
    { name: `base_model.model.${module}.lora_B.weight`, dtype: 'F32' as const, shape: [m.B.length / m.rank, m.rank], data: m.B },
  ]);
  await writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors);
  const targets = [...new Set([...lora.keys()].map((m) => m.split('.').pop()!))];
  writeFileSync(
    path.join(dir, 'adapter_config.json'),
    JSON.stringify({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: baseModel,
      r: first.rank,
      lora_alpha: first.scaling * first.rank,
      target_modules: targets,
      lora_dropout: 0,
      bias: 'none',
      fan_in_fan_out: false,
      use_rslora: false,
      use_dora: false,
    }),
  );
  return dir;
}
