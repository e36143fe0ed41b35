// The error of a merged module as written: ‖ΔW' − ΔW*‖² against the exact weighted sum, measured in float32 and
// again in float64 when it is small enough to drown in float32's cancellation noise (~1e-7·‖ΔW*‖²).
import type { MatmulKernel } from './kernels/matmul.js';
import { innerProducts, stackedGrams, weightedNormSq } from './kernels/lowrank-svd.js';
import { catRoundoffSq, distanceSq } from './diagnostics.js';
import type { DispatchedModule } from './module-step.js';

export interface ModuleError {
  errSq: number;
  mergedNormSq: number;
  /** ‖ΔW*‖² and the inner products, from float64 Grams when the error was measured again */
  targetNormSq: number;
  inner: Float64Array;
}

/** Measures `m.merged` (already rounded to the output dtype). */
export async function measureModule(kernel: MatmulKernel, m: DispatchedModule): Promise<ModuleError> {
  const { merged, stacked, weights } = m;
  let { inner, targetNormSq } = m;
  if (m.catForm) return { errSq: await catRoundoffSq(kernel, m.inputs, merged), mergedNormSq: targetNormSq, targetNormSq, inner }; // norms equal up to round-off

  const small = (e: number) => e < 1e-4 * targetNormSq;
  // an exact SVD says its error (the energy it cut): when that is small, measure in float64 straight away
  const knownSmall = m.exactSvd && m.energy !== null && small(m.energy.total - m.energy.kept);
  let { errSq, mergedNormSq } = await distanceSq(kernel, merged, stacked, weights, targetNormSq, knownSmall ? 'f64' : 'f32');
  if (!knownSmall && small(errSq)) {
    if (!m.exactSvd) {
      // the Grams were float32: the target's norm needs float64 too
      inner = innerProducts(await stackedGrams(kernel, stacked, 'f64'), stacked);
      targetNormSq = weightedNormSq(inner, weights);
    }
    ({ errSq, mergedNormSq } = await distanceSq(kernel, merged, stacked, weights, targetNormSq, 'f64'));
  }
  return { errSq, mergedNormSq, targetNormSq, inner };
}
