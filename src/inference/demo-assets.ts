// The trained demo model shipped in the repository (assets/demo, made by tools/demo-model): a small Llama checkpoint
// in `base/` and one PEFT LoRA per skill in `adapters/<skill>/`, with a manifest of every file's sha256 and size and
// how each part was made. Checked against its manifest before use, so a truncated clone or a Git LFS pointer is
// reported by name instead of failing later inside the model builder.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { InvalidFileError, NotFoundError } from '../errors.js';
import { DEMO_SKILLS, type DemoSkill } from './demo.js';
import { sha256File } from '../formats/file-hash.js';
import { targetsOfAdapters } from './builder/adapter-targets.js';
import type { LoraTarget } from './builder/naming.js';

/** `assets/demo` of the installed package (the same path from src/ and dist/). */
export const DEMO_ASSETS_DIR = fileURLToPath(new URL('../../assets/demo', import.meta.url));

const ManifestSchema = z.object({
  model: z.string(),
  files: z.record(z.string(), z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int().nonnegative(), part: z.string() })),
  parts: z.record(z.string(), z.record(z.string(), z.unknown())),
});
export type DemoManifest = z.infer<typeof ManifestSchema>;

export interface DemoAssets {
  dir: string;
  checkpointDir: string;
  adapterDirs: Record<DemoSkill, string>;
  manifest: DemoManifest;
  /** the projections the skill adapters were trained on: the demo model is built with LoRA inputs for these */
  targets: LoraTarget[];
}

/** Reads `<dir>/manifest.json` and checks every file it lists (size, then sha256). */
export async function checkDemoAssets(dir: string = DEMO_ASSETS_DIR): Promise<DemoAssets> {
  const manifestFile = path.join(dir, 'manifest.json');
  let text: string;
  try {
    text = await readFile(manifestFile, 'utf8');
  } catch {
    throw new NotFoundError(`the demo model is missing: no ${manifestFile} (rebuild it with tools/demo-model/build.sh, or set LORAFORGE_MODEL)`);
  }
  const parsed = ManifestSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new InvalidFileError(manifestFile, parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const manifest = parsed.data;
  for (const [name, entry] of Object.entries(manifest.files)) {
    const file = path.join(dir, name);
    const size = await stat(file).then((s) => s.size, () => -1);
    if (size !== entry.bytes || (await sha256File(file)) !== entry.sha256) {
      throw new InvalidFileError(file, `does not match ${manifestFile} (${size < 0 ? 'missing' : 'changed'}): restore it from git (git checkout -- assets/demo)`);
    }
  }
  for (const skill of DEMO_SKILLS) {
    if (!manifest.files[`adapters/${skill}/adapter_model.safetensors`]) throw new InvalidFileError(manifestFile, `lists no adapter for the skill ${skill}`);
  }
  const adapterDirs = Object.fromEntries(DEMO_SKILLS.map((s) => [s, path.join(dir, 'adapters', s)])) as Record<DemoSkill, string>;
  const targets = await targetsOfAdapters(Object.values(adapterDirs));
  if (!targets) throw new InvalidFileError(manifestFile, 'its adapters must list their target_modules');
  return { dir, checkpointDir: path.join(dir, 'base'), adapterDirs, manifest, targets };
}
