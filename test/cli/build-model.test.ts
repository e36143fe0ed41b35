// `loraforge build-model` as a user runs it: the int4 block size from its flag, older builds it removed named, and a
// bad number refused by name. Number flags of every command are refused the same way (exit 2, one line, no stack
// trace) before anything runs.
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, runCli } from '../helpers/cli.js';

const demo = path.join(repoRoot, 'assets/demo/base');
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'lf-build-model-'));
});

afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('loraforge build-model', () => {
  it('builds int4 weights in the blocks --int4-block-size asks for', async () => {
    const { code, stdout, stderr } = await runCli(['build-model', demo, '--int4-block-size', '64', '--json', '--data-dir', dataDir]);
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout) as { dir: string; quantization: { blockSize: number } };
    expect(result.quantization.blockSize).toBe(64);
    expect(result.dir.startsWith(path.join(dataDir, 'models'))).toBe(true);
  });

  it("names the builds by older loraforge versions that a new build removed", async () => {
    const first = JSON.parse((await runCli(['build-model', demo, '--json', '--data-dir', dataDir])).stdout) as { dir: string; removed: string[] };
    const [hash, version] = /^([0-9a-f]+)-b(\d+)-/.exec(path.basename(first.dir))!.slice(1);
    const older = `${hash}-b${Number(version) - 1}-int4-0badc0de`;
    await mkdir(path.join(dataDir, 'models', older));
    await rm(first.dir, { recursive: true });
    const { code, stdout, stderr } = await runCli(['build-model', demo, '--data-dir', dataDir]);
    expect(code, stderr).toBe(0);
    expect(stdout).toContain(`removed 1 build of this checkpoint by older loraforge versions: ${older}\n`);
    expect(await readdir(path.join(dataDir, 'models'))).not.toContain(older);
  });

  it('refuses numbers that are not, naming the flag', async () => {
    for (const [args, message] of [
      [['build-model', demo, '--int4-block-size', '48', '--data-dir', dataDir], '--int4-block-size must be a power of 2 from 16 to 256 (default 32), got 48'],
      [['build-model', demo, '--max-rank', 'abc', '--data-dir', dataDir], '--max-rank must be a whole number >= 1, got "abc"'],
      // these went to the server as NaN, or (--port) were an internal error
      [['merges', 'create', 'a', 'b', '--method', 'ties', '--density', 'most'], '--density must be a number, got "most"'],
      [['sweep', 'a', 'b', '--random', 'ten'], '--random must be a whole number >= 1, got "ten"'],
      [['serve', '--port', 'x'], '--port must be a whole number >= 0, got "x"'],
    ] as const) {
      const { code, stderr } = await runCli([...args]);
      expect(code, args.join(' ')).toBe(2);
      expect(stderr.trim()).toBe(`loraforge: ${message}`);
    }
  });
});
