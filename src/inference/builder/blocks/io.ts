// The graph's inputs and outputs: the contract of docs/MODELS.md, the same for every architecture.
import { projectionFeatures } from '../config.js';
import { io } from '../naming.js';
import type { GraphContext } from './context.js';

/** Symbolic dimension names used by every graph; the manifest repeats them. */
export const DIMS = {
  batch: 'batch',
  seq: 'seq',
  pastCapacity: 'past_capacity',
  loraRows: 'lora_rows',
  loraRank: 'lora_rank',
} as const;

export function declareIo(c: GraphContext): void {
  const { config, spec } = c;
  const { batch, seq, pastCapacity, loraRows, loraRank } = DIMS;
  const kvDim = config.numKvHeads * config.headDim;
  c.input(io.inputIds, 'int64', [batch, seq]);
  c.input(io.positionIds, 'int64', [batch, seq]);
  c.input(io.seqlensK, 'int32', [batch]);
  c.input(io.totalSeqLen, 'int32', []);
  if (spec.head === 'generate') c.input(io.logitsIndex, 'int64', [batch]);
  else c.input(io.targetIds, 'int64', [batch, seq]);
  for (let l = 0; l < config.numLayers; l++) {
    c.input(io.pastKey(l), 'float32', [batch, config.numKvHeads, pastCapacity, config.headDim]);
    c.input(io.pastValue(l), 'float32', [batch, config.numKvHeads, pastCapacity, config.headDim]);
  }
  for (let l = 0; l < config.numLayers; l++) {
    for (const t of spec.targets) {
      const { inFeatures, outFeatures } = projectionFeatures(config, t);
      c.input(io.loraA(l, t), 'float32', [loraRows, inFeatures, loraRank]);
      c.input(io.loraB(l, t), 'float32', [loraRows, loraRank, outFeatures]);
    }
  }

  // declared before the nodes so they are listed head first, then the cache rows by layer
  if (spec.head === 'generate') {
    c.output(io.logits, 'float32', [batch, config.vocabSize]);
    for (let l = 0; l < config.numLayers; l++) {
      c.output(io.kvNewKey(l), 'float32', [batch, seq, kvDim]);
      c.output(io.kvNewValue(l), 'float32', [batch, seq, kvDim]);
    }
  } else {
    c.output(io.targetLogprobs, 'float32', [batch, seq]);
  }
}
