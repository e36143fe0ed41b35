// `loraforge build-model` as a user runs it: the int4 block size from its flag, and bad numbers refused by name
// (exit 2, one line, no stack trace).
import { mkdtemp, rm } from 'node:fs/promises';
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

  it('refuses a block size that is not a power of 2 and a rank that is not a number, naming the flag', async () => {
    for (const [args, message] of [
      [['--int4-block-size', '48'], '--int4-block-size must be a power of 2 from 16 to 256 (default 32), got 48'],
      [['--max-rank', 'abc'], '--max-rank must be a whole number, got "abc"'],
    ] as const) {
      const { code, stderr } = await runCli(['build-model', demo, ...args, '--data-dir', dataDir]);
      expect(code).toBe(2);
      expect(stderr.trim()).toBe(`loraforge: ${message}`);
    }
  });
});
