// docker/entrypoint.sh as the image runs it, outside a container (no Docker daemon here): roles map to commands,
// the role is noted, and `loraforge healthcheck` (the image's HEALTHCHECK) reads the note and checks that role.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';

const run = promisify(execFile);
const script = path.join(repoRoot, 'docker/entrypoint.sh');
const bin = path.join(repoRoot, 'bin/loraforge.js');
let work: string;
let roleFile: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'lf-entrypoint-'));
  roleFile = path.join(work, 'role');
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

// TMPDIR: the bot's heartbeat file lives there, so no heartbeat of another run is found
const env = () => ({ ...process.env, LORAFORGE_BIN: bin, LORAFORGE_ROLE_FILE: roleFile, TMPDIR: work });
const entrypoint = (...args: string[]) => run('sh', [script, ...args], { env: env(), timeout: 60_000 });

describe('docker/entrypoint.sh', () => {
  it('runs `serve` for api and a role as its command, notes the role, and passes anything else through', async () => {
    expect((await entrypoint('api', '--help')).stdout).toMatch(/^Usage: loraforge serve/);
    expect(await readFile(roleFile, 'utf8')).toBe('api\n');
    expect((await entrypoint('worker', '--help')).stdout).toMatch(/^Usage: loraforge worker/);
    expect(await readFile(roleFile, 'utf8')).toBe('worker\n');
    expect((await entrypoint('inspect', '--help')).stdout).toMatch(/^Usage: loraforge inspect/);
    expect(await readFile(roleFile, 'utf8')).toBe('worker\n'); // a plain command is no role
  }, 120_000);

  it("`loraforge healthcheck` checks the role the entrypoint noted: a worker's Redis, a bot's heartbeat", async () => {
    await entrypoint('worker', '--help');
    const healthy = await run(bin, ['healthcheck'], { env: env(), timeout: 60_000 });
    expect(healthy.stdout).toMatch(/^healthy: redis at redis:\/\/.* ok/);
    await entrypoint('bot', '--help');
    const unhealthy = await run(bin, ['healthcheck'], { env: env(), timeout: 60_000 }).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(unhealthy?.code).toBe(1);
    expect(unhealthy?.stderr).toMatch(/^unhealthy: no heartbeat at .*: the bot has not connected to Discord/);
  }, 120_000);
});
