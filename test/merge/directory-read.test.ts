// mergeToDirectory reads its inputs at once and hashes them in a worker thread: the report's hashes are the
// files' sha256, progress counts every read, and of several bad inputs the first in the list is the one named.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeAdapter } from '../../src/formats/peft.js';
import { mergeToDirectory, type MergeProgress } from '../../src/merge/index.js';
import { makeAdapter } from './adapters.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'loraforge-merge-read-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

const Q = 'model.layers.0.self_attn.q_proj';

describe('mergeToDirectory reading', () => {
  it('puts each input file\'s sha256 in the report and reports every read', async () => {
    const dirs: string[] = [];
    for (let i = 0; i < 3; i++) {
      const dir = path.join(tmp, `in-${i}`);
      await writeAdapter(dir, makeAdapter([{ name: Q, out: 16, inn: 12, r: 2, seed: 10 + i }]));
      dirs.push(dir);
    }
    const progress: MergeProgress[] = [];
    const report = await mergeToDirectory(dirs, path.join(tmp, 'out'), { method: 'ties', space: 'factors', weights: [1, 1, 1], density: 0.5 }, { onProgress: (p) => progress.push(p) });
    const expected = await Promise.all(dirs.map(async (d) => createHash('sha256').update(await readFile(path.join(d, 'adapter_model.safetensors'))).digest('hex')));
    expect(report.inputs.map((x) => x.sha256)).toEqual(expected);
    expect(progress.filter((p) => p.phase === 'read').map((p) => p.done)).toEqual([0, 1, 2, 3]);
  });

  it('names the first bad input in list order, whichever read fails first', async () => {
    const good = path.join(tmp, 'in-0');
    const missing = [path.join(tmp, 'missing-1'), path.join(tmp, 'missing-2')];
    for (const order of [missing, [...missing].reverse()]) {
      await expect(mergeToDirectory([good, ...order], path.join(tmp, 'never'), { method: 'linear', weights: [1, 1, 1] })).rejects.toThrow(
        new RegExp(`${path.basename(order[0]!)}: no such directory`),
      );
    }
  });
});
