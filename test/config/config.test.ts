import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ENV_VARS, loadConfig } from '../../src/config/index.js';
import { InvalidInputError } from '../../src/errors.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'lf-config-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const emptyDir = () => mkdtempSync(path.join(root, 'case-'));

describe('config', () => {
  it('has working defaults with no file and no environment', () => {
    const config = loadConfig({ env: {}, configDir: emptyDir() });
    expect(config.redis.url).toBe('redis://127.0.0.1:6379');
    expect(config.server.port).toBe(8080);
    expect(config.worker.concurrency).toBe(1);
  });

  it('layers yaml, then environment, then overrides', () => {
    const dir = emptyDir();
    writeFileSync(path.join(dir, 'default.yaml'), 'server:\n  port: 9000\n  host: 0.0.0.0\nworker:\n  concurrency: 3\n');
    const config = loadConfig({ env: { PORT: '9100' }, configDir: dir, overrides: { worker: { concurrency: 5 } } });
    expect(config.server.port).toBe(9100);
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.worker.concurrency).toBe(5);
  });

  it('names the bad setting', () => {
    expect(() => loadConfig({ env: { PORT: 'eighty' }, configDir: emptyDir() })).toThrow(InvalidInputError);
    expect(() => loadConfig({ env: { PORT: 'eighty' }, configDir: emptyDir() })).toThrow(/server\.port/);
  });

  it('reads booleans and numbers from the environment', () => {
    const config = loadConfig({ env: { LORAFORGE_AUTO_EVAL_MERGES: 'false', LORAFORGE_ARCHIVE_MAX_ENTRIES: '50' }, configDir: emptyDir() });
    expect(config.eval.autoEvalMerges).toBe(false);
    expect(config.server.archiveMaxEntries).toBe(50);
    expect(loadConfig({ env: {}, configDir: emptyDir() }).eval.autoEvalMerges).toBe(true);
    // ORT's threads spin during runs unless told not to
    expect(loadConfig({ env: {}, configDir: emptyDir() }).inference.spinning).toBe(true);
    expect(loadConfig({ env: { LORAFORGE_SPINNING: 'false' }, configDir: emptyDir() }).inference.spinning).toBe(false);
    expect(loadConfig({ env: {}, configDir: emptyDir() }).builder.int4BlockSize).toBe(32);
    expect(loadConfig({ env: { LORAFORGE_BUILD_INT4_BLOCK_SIZE: '128' }, configDir: emptyDir() }).builder.int4BlockSize).toBe(128);
    expect(() => loadConfig({ env: { LORAFORGE_BUILD_INT4_BLOCK_SIZE: '48' }, configDir: emptyDir() })).toThrow(/builder\.int4BlockSize.*a power of 2 from 16 to 256/);
  });

  it('documents every environment variable in docs/CONFIG.md', () => {
    const doc = readFileSync(path.join(import.meta.dirname, '../../docs/CONFIG.md'), 'utf8');
    expect(Object.keys(ENV_VARS).filter((name) => !doc.includes(`\`${name}\``))).toEqual([]);
  });
});
