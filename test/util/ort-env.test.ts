// ONNX Runtime's telemetry (since 1.29 on Linux and macOS: events to Microsoft, `.ses` and `mat-debug-<pid>.log` in
// the temp dir) stays off in a fresh process whose environment does not mention it, including in a worker thread,
// where setting process.env cannot reach ORT: src/util/ort-env.ts sets it on the main thread. The child creates an
// ORT session from bytes that are no model (ORT sets up its environment, telemetry included, before it parses them).
// The whole suite checks the same of every test process: test/global-setup.ts fails a run that leaves those files.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';

const run = promisify(execFile);
const TELEMETRY_FILES = /^(\.ses|mat-debug-\d+\.log)$/;

describe('ONNX Runtime telemetry', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lf-ort-env-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('is off in a worker thread started by startWorker, with nothing said in the environment', async () => {
    const tmp = path.join(dir, 'tmp');
    await writeFile(
      path.join(dir, 'session.mjs'),
      `import { createRequire } from 'node:module';\n` +
        `const ort = createRequire(${JSON.stringify(path.join(repoRoot, 'package.json'))})('onnxruntime-node');\n` +
        `await ort.InferenceSession.create(new Uint8Array([1, 2, 3])).then(() => { throw new Error('a model?'); }, () => {});\n`,
    );
    await writeFile(
      path.join(dir, 'main.mts'),
      `import { once } from 'node:events';\n` +
        `import { startWorker } from ${JSON.stringify(pathToFileURL(path.join(repoRoot, 'src/util/worker.ts')).href)};\n` +
        `const [code] = await once(startWorker(new URL(${JSON.stringify(pathToFileURL(path.join(dir, 'session.mjs')).href)})), 'exit');\n` +
        `process.exitCode = code;\n`,
    );
    await mkdir(tmp);
    const { ORT_DISABLE_TELEMETRY: _set, ...env } = process.env;
    void _set;
    await run(process.execPath, ['--import', 'tsx', path.join(dir, 'main.mts')], { cwd: repoRoot, env: { ...env, TMPDIR: tmp }, timeout: 60_000 });
    expect((await readdir(tmp)).filter((name) => TELEMETRY_FILES.test(name))).toEqual([]);
  });
});
