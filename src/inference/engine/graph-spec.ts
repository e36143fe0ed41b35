// The engine's view of a built model: sizes and the graph's input/output names, read from the builder's
// manifest so nothing is hard-coded twice.
import type { LoraSite } from './lora-pool.js';

export interface GraphSpec {
  /** the base model's name, e.g. "meta-llama/Llama-3.2-1B" (served as a model id) */
  baseModel: string;
  layers: number;
  kvHeads: number;
  headDim: number;
  vocabSize: number;
  /** positions the graph's rotary caches cover: the context length */
  maxPositions: number;
  slots: number;
  maxRank: number;
  targets: string[];
  sites: LoraSite[];
  inputs: {
    inputIds: string;
    positionIds: string;
    seqlensK: string;
    totalSeqLen: string;
    logitsIndex: string;
    pastKey: string[];
    pastValue: string[];
  };
  outputs: {
    logits: string;
    newKey: string[];
    newValue: string[];
  };
}

export function requiredOutputs(spec: GraphSpec): string[] {
  return [spec.outputs.logits, ...spec.outputs.newKey, ...spec.outputs.newValue];
}
