// A built model directory as the engine sees it: the generate graph's path and the GraphSpec read from the
// builder's manifest, so input names and sizes are never guessed.
import path from 'node:path';
import { readManifest, type ModelManifest } from '../builder/manifest.js';
import type { GraphSpec } from './graph-spec.js';

export interface ServedModel {
  manifest: ModelManifest;
  spec: GraphSpec;
  /** the generate graph */
  onnxPath: string;
}

const perLayer = (pattern: string, layers: number) => Array.from({ length: layers }, (_, l) => pattern.replace('{layer}', String(l)));

export function graphSpec(manifest: ModelManifest): GraphSpec {
  const { config, lora, kvCache } = manifest;
  return {
    baseModel: manifest.baseModel,
    layers: kvCache.numLayers,
    kvHeads: kvCache.numKvHeads,
    headDim: kvCache.headDim,
    vocabSize: config.vocabSize,
    maxPositions: manifest.maxPositions,
    slots: lora.slots,
    maxRank: lora.maxRank,
    targets: lora.targets,
    sites: lora.inputs.map((i) => ({ module: i.module, inFeatures: i.inFeatures, outFeatures: i.outFeatures, inputA: i.a, inputB: i.b })),
    inputs: {
      inputIds: 'input_ids',
      positionIds: 'position_ids',
      seqlensK: 'seqlens_k',
      totalSeqLen: 'total_seq_len',
      logitsIndex: 'logits_index',
      pastKey: perLayer(kvCache.pastKey, kvCache.numLayers),
      pastValue: perLayer(kvCache.pastValue, kvCache.numLayers),
    },
    outputs: {
      logits: 'logits',
      newKey: perLayer(kvCache.newKey, kvCache.numLayers),
      newValue: perLayer(kvCache.newValue, kvCache.numLayers),
    },
  };
}

export async function loadServedModel(dir: string): Promise<ServedModel> {
  const manifest = await readManifest(dir);
  return { manifest, spec: graphSpec(manifest), onnxPath: path.join(dir, manifest.graphs.generate.file) };
}
