// The LoRA targets a model is built with for given adapters: what their adapter_config.json names, in builder terms.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidFileError } from '../../src/errors.js';
import { targetsOfAdapters } from '../../src/inference/builder/adapter-targets.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'lf-adapter-targets-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function adapter(name: string, targetModules: string[] | string): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: targetModules }));
  return dir;
}

describe('targetsOfAdapters', () => {
  it('is the union of the projections the adapters name, without the _proj suffix', async () => {
    const attention = await adapter('attention', ['q_proj', 'v_proj']);
    const mlp = await adapter('mlp', ['model.layers.0.mlp.gate_proj', 'up_proj', 'down_proj', 'q_proj']);
    expect(await targetsOfAdapters([attention, mlp])).toEqual(['q', 'v', 'gate', 'up', 'down']);
  });

  it('leaves the choice to the configured default when an adapter names its modules by a regex', async () => {
    expect(await targetsOfAdapters([await adapter('regex', '.*(q|v)_proj')])).toBeUndefined();
  });

  it('refuses a module loraforge cannot serve, naming the file', async () => {
    const dir = await adapter('embed', ['q_proj', 'embed_tokens']);
    await expect(targetsOfAdapters([dir])).rejects.toThrow(InvalidFileError);
    await expect(targetsOfAdapters([dir])).rejects.toThrow(/embed\/adapter_config\.json.*"embed_tokens"/);
  });
});
