// `loraforge serve` / `all` on a port that is taken: exit 2 with one line naming the port, without building a
// model or idling on open connections; and the API's own listen, should the port be taken after that check.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRuntime, startApi } from '../../src/app.js';
import { parseConfig } from '../../src/config/index.js';
import { InvalidInputError } from '../../src/errors.js';
import { silentLogger } from '../../src/util/log.js';
import { TEST_REDIS_URL, testPrefix } from '../helpers/redis.js';

const run = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let holder: net.Server;
let port: number;
let work: string;

beforeAll(async () => {
  holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  port = (holder.address() as net.AddressInfo).port;
  work = await mkdtemp(path.join(os.tmpdir(), 'lf-port-'));
});

afterAll(async () => {
  await new Promise((resolve) => holder.close(resolve));
  await rm(work, { recursive: true, force: true });
});

describe('a taken port', () => {
  it.each(['serve', 'all'])('`loraforge %s` exits 2 with one line naming it', async (command) => {
    const env = { ...process.env, LORAFORGE_DATA_DIR: path.join(work, 'data'), REDIS_URL: TEST_REDIS_URL, LORAFORGE_REDIS_PREFIX: testPrefix('port') };
    const result = await run(process.execPath, ['--import', 'tsx', path.join(repo, 'src/cli/main.ts'), command, '--port', String(port)], { cwd: repo, env, timeout: 90_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string; killed?: boolean }) => ({ code: err.killed ? -1 : err.code, stderr: err.stderr }),
    );
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual([`loraforge: cannot listen on 127.0.0.1:${port}: the port is in use by another process (set PORT or --port, LORAFORGE_HOST or --host)`]);
  }, 120_000);

  it('startApi refuses it as a setting to fix (the port taken after the early check)', async () => {
    const config = parseConfig({ dataDir: work, redis: { url: TEST_REDIS_URL, prefix: testPrefix('port') }, server: { port }, inference: { enabled: false } });
    const rt = await openRuntime(config, silentLogger());
    try {
      const err = await startApi(rt).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidInputError);
      expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    } finally {
      await rt.lifecycle.close();
    }
  });
});
