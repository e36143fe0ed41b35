// vitest globalSetup: the run gets an OS temp dir of its own (TMPDIR, inherited by the test workers and every
// process they start) and fails if the tests leave a file or dir of ours (`lf-*`, `loraforge-*`) in it, or the files
// ONNX Runtime's telemetry writes (`.ses`, `mat-debug-<pid>.log`): loraforge turns it off (src/util/ort-env.ts), and
// the run starts without ORT_DISABLE_TELEMETRY so that every test process shows it does. A private dir counts only
// this run's leftovers, so runs side by side (or old /tmp litter) cannot make it pass or fail.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const OURS = /^(lf|loraforge)-/;
const TELEMETRY = /^(\.ses|mat-debug-\d+\.log)$/;
/** left by others, removed with the dir: tsx's cache */
const THEIRS = /^tsx-\d+$/;

export default function setup(): () => void {
  const outer = { TMPDIR: process.env.TMPDIR, TMP: process.env.TMP, TEMP: process.env.TEMP, ORT_DISABLE_TELEMETRY: process.env.ORT_DISABLE_TELEMETRY };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lf-test-run-'));
  process.env.TMPDIR = process.env.TMP = process.env.TEMP = dir;
  delete process.env.ORT_DISABLE_TELEMETRY;
  return () => {
    for (const [key, value] of Object.entries(outer)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    const left = readdirSync(dir).sort();
    rmSync(dir, { recursive: true, force: true });
    const ours = left.filter((name) => OURS.test(name));
    const telemetry = left.filter((name) => TELEMETRY.test(name));
    const unknown = left.filter((name) => !OURS.test(name) && !TELEMETRY.test(name) && !THEIRS.test(name));
    if (unknown.length > 0) console.warn(`\nwarning: the tests left these in the temp dir (removed now):\n  ${unknown.join('\n  ')}\n`);
    if (ours.length > 0) {
      // vitest only logs an error thrown here and still exits 0, so set the exit code ourselves
      process.exitCode = 1;
      console.error(`\nFAIL: the tests left ${ours.length} temp dirs or files (removed now); the test that makes one must remove it:\n  ${ours.join('\n  ')}\n`);
    }
    if (telemetry.length > 0) {
      process.exitCode = 1;
      console.error(`\nFAIL: ONNX Runtime's telemetry ran in a test process (${telemetry.join(', ')}): a process or thread loaded onnxruntime-node before src/util/ort-env.ts ran on its main thread\n`);
    }
  };
}
