// `loraforge build-model <checkpoint dir>`: an HF checkpoint becomes the ONNX model dir the engine serves, with
// LoRA inputs for every adapter. Cached: building an unchanged checkpoint again returns at once.
import path from 'node:path';
import type { Command } from 'commander';
import { InvalidInputError } from '../../errors.js';
import type { BuildProgress } from '../../inference/builder/index.js';
import { LORA_TARGETS, isLoraTarget, type LoraTarget } from '../../inference/builder/naming.js';
import { INT4_BLOCK_SIZE, isInt4BlockSize } from '../../inference/builder/quantize.js';
import { formatBytes, integerOption } from '../options.js';

function parseTargets(value: string): LoraTarget[] {
  const targets = value.split(',').map((t) => t.trim()).filter(Boolean);
  for (const t of targets) {
    if (!isLoraTarget(t)) throw new InvalidInputError(`--targets: unknown projection "${t}"; choose from ${LORA_TARGETS.join(',')}`);
  }
  if (targets.length === 0) throw new InvalidInputError('--targets: name at least one projection, e.g. q,k,v,o');
  return targets as LoraTarget[];
}

function parseBlockSize(value: string): number {
  const n = Number(value);
  if (!isInt4BlockSize(n)) throw new InvalidInputError(`--int4-block-size must be a power of 2 from 16 to 256 (default ${INT4_BLOCK_SIZE}), got ${value}`);
  return n;
}

/** Progress on stderr: one rewritten line on a terminal, a line per phase (and per 10%) otherwise. */
export function progressPrinter(): { update(p: BuildProgress): void; done(): void } {
  const tty = process.stderr.isTTY === true;
  let lastPhase = '';
  let lastDecile = -1;
  return {
    update(p) {
      const pct = p.total > 0 ? Math.floor((100 * p.done) / p.total) : 0;
      const line = `${p.phase} ${p.done}/${p.total} (${pct}%) ${p.detail}`;
      if (tty) {
        process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns ?? 100) - 1)}`);
      } else if (p.phase !== lastPhase || Math.floor(pct / 10) !== lastDecile) {
        process.stderr.write(`${line}\n`);
      }
      lastPhase = p.phase;
      lastDecile = Math.floor(pct / 10);
    },
    done() {
      if (tty) process.stderr.write('\r\x1b[K');
    },
  };
}

export function buildModelCommand(program: Command): void {
  program
    .command('build-model')
    .description('build the ONNX model (with LoRA inputs) that serves a Hugging Face checkpoint and all its adapters')
    .argument('<checkpoint>', 'checkpoint directory: config.json, *.safetensors, tokenizer.json, tokenizer_config.json')
    .option('--dtype <dtype>', 'weights: int4 (4-bit, fast on CPU) or fp32 (LORAFORGE_BUILD_DTYPE)')
    .option('--targets <list>', `projections that take adapters, from ${LORA_TARGETS.join(',')} (LORAFORGE_LORA_TARGETS)`, parseTargets)
    .option('--max-rank <r>', 'largest adapter rank the serving pool holds (LORAFORGE_LORA_MAX_RANK)', integerOption('--max-rank', 1))
    .option('--slots <n>', 'adapter slots in the serving pool, slot 0 = no adapter (LORAFORGE_LORA_SLOTS)', integerOption('--slots', 2))
    .option('--int4-block-size <n>', 'int4 weights in blocks of n: 32 (as Q4_0) or 64, 128 (faster, less exact) (LORAFORGE_BUILD_INT4_BLOCK_SIZE)', parseBlockSize)
    .option('--data-dir <dir>', 'where models are cached, under models/ (LORAFORGE_DATA_DIR)')
    .option('--json', 'print the result (dir, manifest summary, sizes) as JSON')
    .addHelpText(
      'after',
      '\nThe model dir lands in <data dir>/models/<checkpoint hash>-b<builder version>-<dtype>-<options>/ and holds\n' +
        'model.onnx (generation), score.onnx (log-probs of given tokens), model.onnx.data (weights, when large),\n' +
        'manifest.json (every input and output) and the tokenizer files. Supported: Llama 2/3 (TinyLlama, SmolLM),\n' +
        'Mistral and Qwen2 checkpoints in safetensors.',
    )
    .action(async (checkpoint: string, opts: { dtype?: string; targets?: LoraTarget[]; maxRank?: number; slots?: number; int4BlockSize?: number; dataDir?: string; json?: boolean }) => {
      const [{ loadConfig }, { buildModel }] = await Promise.all([import('../../config/index.js'), import('../../inference/builder/index.js')]);
      const config = loadConfig({
        overrides: {
          ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
          builder: {
            ...(opts.dtype ? { dtype: opts.dtype } : {}),
            ...(opts.targets ? { targets: opts.targets } : {}),
            ...(opts.maxRank !== undefined ? { maxRank: opts.maxRank } : {}),
            ...(opts.slots !== undefined ? { slots: opts.slots } : {}),
            ...(opts.int4BlockSize !== undefined ? { int4BlockSize: opts.int4BlockSize } : {}),
          },
        },
      });
      const printer = progressPrinter();
      const started = performance.now();
      // Ctrl-C stops between tensors and removes the partial build; a second one exits at once
      const controller = new AbortController();
      const onSignal = () => {
        if (controller.signal.aborted) process.exit(130);
        process.stderr.write('\nstopping (Ctrl-C again to exit at once)\n');
        controller.abort();
      };
      process.on('SIGINT', onSignal);
      let result;
      try {
        result = await buildModel(path.resolve(checkpoint), {
          dataDir: config.dataDir,
          ...config.builder,
          signal: controller.signal,
          onProgress: (p) => printer.update(p),
        });
      } finally {
        printer.done();
        process.off('SIGINT', onSignal);
      }
      const seconds = (performance.now() - started) / 1000;
      const { dir, manifest, cached, removed } = result;
      const total = Object.values(manifest.files.bytes).reduce((a, b) => a + b, 0);
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify({ dir, cached, removed, seconds, bytes: total, baseModel: manifest.baseModel, dtype: manifest.dtype, quantization: manifest.quantization, targets: manifest.lora.targets, files: manifest.files.bytes, warnings: manifest.warnings }, null, 2)}\n`,
        );
        return;
      }
      const c = manifest.config;
      process.stdout.write(
        `${cached ? 'already built' : `built in ${seconds.toFixed(1)} s`}: ${manifest.baseModel} (${manifest.sourceArchitecture}, ${c.numLayers} layers, ` +
          `hidden ${c.hiddenSize}, vocab ${c.vocabSize}), ${manifest.dtype}${manifest.quantization ? ` in blocks of ${manifest.quantization.blockSize}` : ''}, LoRA on ${manifest.lora.targets.join(',')} ` +
          `(rank ≤ ${manifest.lora.maxRank}, ${manifest.lora.slots} slots)\n${dir}\n` +
          Object.entries(manifest.files.bytes)
            .map(([name, bytes]) => `  ${name.padEnd(24)} ${formatBytes(bytes)}\n`)
            .join('') +
          `  ${'total'.padEnd(24)} ${formatBytes(total)}\n`,
      );
      if (removed.length > 0) process.stdout.write(`removed ${removed.length} build${removed.length > 1 ? 's' : ''} of this checkpoint by older loraforge versions: ${removed.join(', ')}\n`);
      for (const w of manifest.warnings) process.stderr.write(`warning: ${w}\n`);
    });
}
