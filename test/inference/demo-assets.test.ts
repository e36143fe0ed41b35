// assets/demo against its manifest: every file listed with its sha256 and size, the parts recorded with how they were
// made, the whole under 30 MB; a changed or missing file is refused by name.
import { cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidFileError, NotFoundError } from '../../src/errors.js';
import { readAdapter } from '../../src/formats/peft.js';
import { DEMO_MODEL_NAME, DEMO_SKILLS } from '../../src/inference/demo.js';
import { checkDemoAssets, DEMO_ASSETS_DIR } from '../../src/inference/demo-assets.js';

describe('assets/demo', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'loraforge-demo-assets-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('matches its manifest, records how each part was made, and stays under 30 MB', async () => {
    const demo = await checkDemoAssets();
    expect(demo.manifest.model).toBe(DEMO_MODEL_NAME);
    let total = 0;
    for (const [name, entry] of Object.entries(demo.manifest.files)) {
      expect((await stat(path.join(DEMO_ASSETS_DIR, name))).size, name).toBe(entry.bytes);
      total += entry.bytes;
    }
    expect(total).toBeLessThan(30 * 1024 * 1024);
    expect(Object.keys(demo.manifest.parts).sort()).toEqual(['adapters/code', 'adapters/linux-commands', 'adapters/python-automation', 'adapters/troubleshooting', 'base']);
    for (const [part, info] of Object.entries(demo.manifest.parts)) {
      expect(info.command, part).toMatch(/^python3 tools\/demo-model\/train\.py /);
      expect(typeof info.seed).toBe('number');
      expect(info.wall_seconds as number).toBeGreaterThan(0);
    }
    const config = JSON.parse(await readFile(path.join(demo.checkpointDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.architectures).toEqual(['LlamaForCausalLM']);
    for (const skill of DEMO_SKILLS) {
      const adapter = await readAdapter(demo.adapterDirs[skill]);
      expect(adapter.config.baseModel).toBe(DEMO_MODEL_NAME);
      expect(adapter.modules.size).toBe((config.num_hidden_layers as number) * adapter.config.targetModules.length);
      // the engine builds the demo with LoRA inputs for these: every adapter's projections, attention and MLP
      expect((adapter.config.targetModules as string[]).map((m) => m.replace(/_proj$/, '')).sort()).toEqual([...demo.targets].sort());
    }
    expect([...demo.targets].sort()).toEqual(['down', 'gate', 'k', 'o', 'q', 'up', 'v']);
  });

  it('refuses a changed file, a missing file and a missing manifest, naming what to fix', async () => {
    const copy = path.join(root, 'demo');
    await cp(DEMO_ASSETS_DIR, copy, { recursive: true });
    const config = path.join(copy, 'adapters', 'code', 'adapter_config.json');
    await writeFile(config, (await readFile(config, 'utf8')).replace('"r": 16', '"r": 8'));
    await expect(checkDemoAssets(copy)).rejects.toThrow(InvalidFileError);
    await expect(checkDemoAssets(copy)).rejects.toThrow(/adapters\/code\/adapter_config\.json.*changed/);
    await rm(config);
    await expect(checkDemoAssets(copy)).rejects.toThrow(/adapter_config\.json.*missing/);
    await rm(path.join(copy, 'manifest.json'));
    await expect(checkDemoAssets(copy)).rejects.toThrow(NotFoundError);
  });
});
