// `loraforge inspect <adapter dir>`: what an adapter is: its config, modules, ranks, dtype, size, and the norm of
// each module's update ‖s·B·A‖ (from r×r Gram products, so even large adapters inspect in a moment). Unlike a
// merge or a registration, it shows an adapter holding NaN or ±inf (flagged) rather than refusing it.
import type { Command } from 'commander';
import type { AdapterFiles, AdapterSummary } from '../../formats/peft.js';
import { formatBytes, formatCount } from '../options.js';
import { table } from '../progress.js';

/** ‖s·B·A‖_F per module: s·sqrt(tr(BᵀB·AAᵀ)). */
async function updateNorms(files: AdapterFiles): Promise<Map<string, number>> {
  const [{ readAdapter }, { MatmulKernel }] = await Promise.all([import('../../formats/peft.js'), import('../../merge/kernels/matmul.js')]);
  const adapter = await readAdapter(files, { checkFinite: false });
  const kernel = new MatmulKernel();
  try {
    const norms = new Map<string, number>();
    for (const m of adapter.modules.values()) {
      const bb = await kernel.gemm64({ data: m.B, rows: m.outFeatures, cols: m.rank }, { data: m.B, rows: m.outFeatures, cols: m.rank }, { transA: true });
      const aa = await kernel.gemm64({ data: m.A, rows: m.rank, cols: m.inFeatures }, { data: m.A, rows: m.rank, cols: m.inFeatures }, { transB: true });
      let t = 0;
      for (let i = 0; i < m.rank * m.rank; i++) t += bb.data[i]! * aa.data[i]!; // both symmetric: tr(X·Y) = Σ x_ij·y_ij
      norms.set(m.name, Math.abs(m.scaling) * Math.sqrt(Math.max(0, t)));
    }
    return norms;
  } finally {
    await kernel.release();
  }
}

function render(s: AdapterSummary, norms: Map<string, number> | null): string {
  const c = s.config;
  const flagged = new Set((s.nonFinite ?? []).map((t) => t.module));
  const lines = [
    `${s.dir}`,
    `  base model      ${c.baseModel ?? '(not named)'}`,
    `  task type       ${c.taskType ?? '–'}`,
    `  rank / alpha    r=${c.r}, lora_alpha=${c.loraAlpha}${c.useRslora ? ' (rsLoRA: scaling alpha/√r)' : ''}${Object.keys(c.rankPattern).length ? `, ${Object.keys(c.rankPattern).length} rank_pattern entries` : ''}`,
    `  targets         ${s.targets.join(', ')}${s.layers.length ? ` in ${s.layers.length} layers (${s.layers[0]}–${s.layers[s.layers.length - 1]})` : ''}`,
    `  modules         ${s.modules.length} LoRA${s.savedModules.length ? `, ${s.savedModules.length} full tensors (modules_to_save: ${s.savedModules.map((m) => m.name).join(', ')})` : ''}`,
    `  ranks           ${s.ranks.join(', ')}`,
    `  dtype           ${s.dtype}${c.fanInFanOut ? ', fan_in_fan_out (Conv1D layers)' : ''}`,
    `  size            ${formatBytes(s.bytes)}, ${formatCount(s.parameters)} parameters`,
    '',
  ];
  const rows = s.modules.map((m) => [
    flagged.has(m.name) ? `${m.name} (NaN/inf!)` : m.name,
    m.kind,
    `${m.outFeatures}×${m.inFeatures}`,
    String(m.rank),
    String(m.alpha),
    m.scaling.toPrecision(4),
    ...(norms ? [norms.get(m.name)!.toPrecision(4)] : []),
  ]);
  lines.push(table(['module', 'kind', 'out×in', 'rank', 'alpha', 'scaling', ...(norms ? ['‖s·B·A‖'] : [])], rows));
  return `${lines.join('\n')}`;
}

export function inspectCommand(program: Command): void {
  program
    .command('inspect')
    .description('show what a PEFT LoRA adapter is: config, modules, ranks, dtype, size and the norm of each update')
    .argument('<adapter>', 'adapter directory (adapter_config.json + adapter_model.safetensors)')
    .option('--json', 'print the summary as JSON')
    .option('--no-norms', 'read only the config and the safetensors header, not the weights')
    .action(async (dir: string, flags: { json?: boolean; norms: boolean }) => {
      const { inspectAdapter, openAdapterFiles } = await import('../../formats/peft.js');
      const files = await openAdapterFiles(dir);
      const summary = await inspectAdapter(files, flags.norms ? { values: 'count' } : {});
      const norms = flags.norms ? await updateNorms(files) : null;
      if (flags.json) {
        const modules = summary.modules.map((m) => ({ ...m, ...(norms && { norm: norms.get(m.name) }) }));
        process.stdout.write(`${JSON.stringify({ ...summary, modules }, null, 2)}\n`);
      } else {
        process.stdout.write(render(summary, norms));
      }
      for (const w of summary.warnings) process.stderr.write(`warning: ${w}\n`);
    });
}
