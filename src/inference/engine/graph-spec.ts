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
    adapterIdx: string;
    pastKey: string[];
    pastValue: string[];
  };
  outputs: {
    logits: string;
    newKey: string[];
    newValue: string[];
  };
}

/** Every input a session must expose for this spec (LoRA inputs hidden behind an initializer would be ignored). */
export function requiredInputs(spec: GraphSpec): string[] {
  const i = spec.inputs;
  return [
    i.inputIds,
    i.positionIds,
    i.seqlensK,
    i.totalSeqLen,
    i.logitsIndex,
    i.adapterIdx,
    ...i.pastKey,
    ...i.pastValue,
    ...spec.sites.flatMap((s) => [s.inputA, s.inputB]),
  ];
}

export function requiredOutputs(spec: GraphSpec): string[] {
  return [spec.outputs.logits, ...spec.outputs.newKey, ...spec.outputs.newValue];
}
