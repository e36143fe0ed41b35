// The arena over HTTP: createApp with a real Arena on the real Redis, driven by the typed client.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Arena } from '../../src/arena/arena.js';
import { ArenaStore } from '../../src/arena/store.js';
import type { ArenaAdapter } from '../../src/arena/types.js';
import { LoraforgeClient } from '../../src/client/index.js';
import { loadConfig } from '../../src/config/index.js';
import { ConflictError, ForbiddenError, InvalidInputError, NotFoundError } from '../../src/errors.js';
import { createApp } from '../../src/server/app.js';
import { createMetrics } from '../../src/server/metrics.js';
import { silentLogger } from '../../src/util/log.js';
import { listen, type Listening } from '../helpers/http.js';
import { deletePrefix, testPrefix, testRedis } from '../helpers/redis.js';
import { ScriptedAnswers } from './scripted-answers.js';

const ADAPTERS: ArenaAdapter[] = [
  { name: 'code', baseModel: 'org/base', registeredBy: 'alice' },
  { name: 'linux-commands', baseModel: 'org/base', registeredBy: 'bob' },
  { name: 'python-automation', baseModel: 'org/base', registeredBy: 'bob' },
  { name: 'troubleshooting', baseModel: 'org/base', registeredBy: 'carol' },
];

describe('arena API', () => {
  const redis = testRedis();
  const prefix = testPrefix('arena-api');
  const config = loadConfig({
    env: {},
    configDir: os.tmpdir(),
    overrides: { arena: { minVotes: 1, bootstrapRounds: 100, excludeOwnerVotes: true } },
  });
  let api: Listening;
  let client: LoraforgeClient;

  beforeAll(async () => {
    const arena = new Arena({
      store: new ArenaStore(redis, prefix),
      adapters: { list: async () => ADAPTERS },
      answers: new ScriptedAnswers(),
      options: config.arena,
    });
    const app = createApp({
      config: { ...config.server, port: 0 },
      log: silentLogger(),
      metrics: createMetrics({ defaultMetrics: false }),
      readiness: {},
      arena,
    });
    api = await listen(app);
    client = new LoraforgeClient({ baseUrl: api.url });
  });
  afterAll(async () => {
    await api.close();
    await deletePrefix(redis, prefix);
    await redis.quit();
  });

  it('runs a battle: hidden names, votes by three members, names revealed to each voter, then to all on close', async () => {
    const res = await fetch(`${api.url}/v1/battles`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'How do I find large files?', a: 'linux-commands', b: 'troubleshooting', category: 'Linux' }),
    });
    expect(res.status).toBe(201);
    const battle = (await res.json()) as Awaited<ReturnType<typeof client.arena.battle>>;
    expect(res.headers.get('location')).toBe(`/v1/battles/${battle.id}`);
    expect(battle).toMatchObject({ status: 'open', category: 'linux', models: null, votes: 0 });
    expect(battle.answers.A.text).not.toBe('');

    const votes = await Promise.all([
      client.arena.vote(battle.id, 'dave', 'A'),
      client.arena.vote(battle.id, 'erin', 'A'),
      client.arena.vote(battle.id, 'frank', 'tie'),
    ]);
    for (const v of votes) expect(v.battle.models).not.toBeNull();
    const changed = await client.arena.vote(battle.id, 'frank', 'B');
    expect(changed.previous).toBe('tie');
    expect((await client.arena.battle(battle.id)).models).toBeNull();
    expect((await client.arena.battle(battle.id, 'erin')).yourVote).toBe('A');

    const closed = await client.arena.close(battle.id);
    expect(closed).toMatchObject({ status: 'closed', votes: 3, tally: { A: 2, B: 1, tie: 0, bad: 0 } });
    expect(Object.values(closed.models!).sort()).toEqual(['linux-commands', 'troubleshooting']);
    await expect(client.arena.vote(battle.id, 'gina', 'A')).rejects.toThrow(ConflictError);
  });

  it('answers bad input with a 4xx that says what to fix', async () => {
    await expect(client.arena.createBattle({ prompt: '  ' })).rejects.toThrow(/body\.prompt: prompt must not be empty/);
    await expect(client.arena.createBattle({ prompt: 'hi', a: 'nope' })).rejects.toThrow(NotFoundError);
    await expect(client.arena.createBattle({ prompt: 'hi', a: 'code', b: 'code' })).rejects.toThrow(/two different adapters/);
    const res = await fetch(`${api.url}/v1/battles`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'hi', promt: 'typo' }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/promt/);
    const battle = await client.arena.createBattle({ prompt: 'hi', a: 'code', b: 'python-automation' });
    // @ts-expect-error: a choice the API does not know
    await expect(client.arena.vote(battle.id, 'dave', 'C')).rejects.toThrow(InvalidInputError);
    await expect(client.arena.vote(battle.id, 'bob', 'A')).rejects.toThrow(ForbiddenError);
    await expect(client.arena.battle('not-an-id')).rejects.toThrow(/battle id is 12 characters/);
    await expect(client.arena.battle('AAAAAAAAAAAA')).rejects.toThrow(NotFoundError);
    await expect(client.arena.leaderboard({ category: '??' })).rejects.toThrow(/category/);
  });

  it('serves the leaderboard as JSON and as a PNG chart, per category', async () => {
    for (let i = 0; i < 12; i++) {
      const battle = await client.arena.createBattle({ prompt: `question ${i}`, category: i % 2 ? 'code' : 'linux' });
      const first = await client.arena.vote(battle.id, 'dave', 'A');
      // dave prefers code whenever it plays
      if (first.battle.models!.B === 'code') await client.arena.vote(battle.id, 'dave', 'B');
      await client.arena.vote(battle.id, 'erin', i % 3 === 0 ? 'bad' : 'A');
    }
    const board = await client.arena.leaderboard();
    expect(board.votes).toBe(3 + 24 + 0); // the first test's three votes, two per battle here
    expect(board.categories).toEqual(['code', 'linux']);
    expect(board.entries.length).toBeGreaterThanOrEqual(3);
    for (const e of board.entries) {
      expect(e.lower).toBeLessThanOrEqual(e.rating);
      expect(e.upper).toBeGreaterThanOrEqual(e.rating);
    }
    expect(board.winMatrix.adapters).toEqual(board.entries.map((e) => e.name));
    const code = await client.arena.leaderboard({ category: 'code', minVotes: 0 });
    expect(code.votes).toBe(12);

    const png = await client.arena.leaderboardPng();
    expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(960);
    expect(png.readUInt32BE(20)).toBe(78 + board.entries.length * 26 + 74);
    expect(png.length).toBeGreaterThan(5_000);
    expect(png.length).toBeLessThan(500_000);
    const res = await fetch(`${api.url}/v1/leaderboard.png?category=code`);
    expect(res.headers.get('content-type')).toBe('image/png');
    if (process.env.LORAFORGE_KEEP_CHART) writeFileSync(path.join(os.tmpdir(), 'loraforge-leaderboard.png'), png);
  });

  it('prints the board with `loraforge leaderboard`, as a table, as JSON, and writes the chart', async () => {
    const { buildProgram, runProgram } = await import('../../src/cli/program.js');
    const { leaderboardCommand } = await import('../../src/cli/commands/leaderboard.js');
    const cli = async (args: string[]) => {
      let out = '';
      let err = '';
      const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
      const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((err += String(chunk)), true));
      try {
        const code = await runProgram(buildProgram([leaderboardCommand]), ['node', 'loraforge', 'leaderboard', '--server', api.url, ...args]);
        return { code, out, err };
      } finally {
        stdout.mockRestore();
        stderr.mockRestore();
      }
    };
    const board = await client.arena.leaderboard();
    const table = await cli([]);
    expect(table.code).toBe(0);
    expect(table.out).toContain(`Arena leaderboard (all categories) · ${board.votes} votes`);
    const first = board.entries[0]!;
    expect(table.out).toMatch(new RegExp(`^ {3}1  ${first.name} +${Math.round(first.rating)}  ${Math.round(first.lower)} – ${Math.round(first.upper)}`, 'm'));
    expect(table.out).toContain('categories: code, linux');

    const json = await cli(['--json', '--category', 'code', '--min-votes', '0']);
    expect(JSON.parse(json.out)).toMatchObject({ category: 'code', votes: 12 });

    const file = path.join(os.tmpdir(), `lf-arena-${process.pid}.png`);
    const png = await cli(['--png', file]);
    expect(png.out).toContain(`chart written to ${file}`);
    expect(readFileSync(file).subarray(1, 4).toString('ascii')).toBe('PNG');
    rmSync(file);

    const bad = await cli(['--min-votes', 'many']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--min-votes must be a whole number/);
  });

  it('describes its routes in /openapi.json', async () => {
    const doc = (await client.system.openapi()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/battles', '/v1/battles/{id}', '/v1/battles/{id}/votes', '/v1/battles/{id}/close', '/v1/leaderboard', '/v1/leaderboard.png']),
    );
  });
});
