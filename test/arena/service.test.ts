// The arena in the real composition root (`loraforge serve`): its contestants are the registry's adapters, its
// owners their `registeredBy`. This process serves no model, so a new battle is refused with 503 after the pair
// is checked; votes and the leaderboard need no model.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError, UnavailableError } from '../../src/errors.js';
import { writeTestAdapter } from '../helpers/adapters.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'lf-arena-svc-'));
  await writeTestAdapter(path.join(work, 'gen-a'), { hidden: 64, kv: 32, layers: 2, rank: 4 }, 21);
  await writeTestAdapter(path.join(work, 'gen-b'), { hidden: 64, kv: 32, layers: 2, rank: 4 }, 22);
  svc = await startTestService({ name: 'arena-svc', worker: false, server: { importDir: work } });
  await svc.client.adapters.registerPath('gen-a', { name: 'gen-a', registeredBy: 'discord:1' });
  await svc.client.adapters.registerPath('gen-b', { name: 'gen-b', registeredBy: 'discord:2' });
});

afterAll(async () => {
  await svc?.close();
  await rm(work, { recursive: true, force: true });
});

describe('arena in loraforge serve', () => {
  it('draws contestants from the registry and says a battle needs a served model', async () => {
    const { client } = svc;
    await expect(client.arena.createBattle({ prompt: 'hi', a: 'gen-a', b: 'gen-c' })).rejects.toThrow(NotFoundError);
    await expect(client.arena.createBattle({ prompt: 'hi' })).rejects.toThrow(UnavailableError);
    await expect(client.arena.createBattle({ prompt: 'hi', a: 'gen-a' })).rejects.toThrow(/serves no model/);
    const board = await client.arena.leaderboard();
    expect(board).toMatchObject({ votes: 0, entries: [], categories: [] });
    expect((await client.arena.leaderboardPng()).subarray(1, 4).toString('ascii')).toBe('PNG');
  });
});
