// vitest globalSetup: the run gets an OS temp dir of its own (TMPDIR, inherited by the test workers and every
// process they start), and fails if the tests leave anything in it. A private dir counts only this run's leftovers,
// so runs side by side (or a machine's old /tmp litter) cannot make it pass or fail.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default function setup(): () => void {
  const outer = { TMPDIR: process.env.TMPDIR, TMP: process.env.TMP, TEMP: process.env.TEMP };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lf-test-run-'));
  process.env.TMPDIR = process.env.TMP = process.env.TEMP = dir;
  return () => {
    for (const [key, value] of Object.entries(outer)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    const left = readdirSync(dir);
    rmSync(dir, { recursive: true, force: true });
    if (left.length > 0) {
      // vitest only logs an error thrown here and still exits 0, so set the exit code ourselves
      process.exitCode = 1;
      console.error(`\nFAIL: the tests left ${left.length} entries in the temp dir (removed now); the test that makes one must remove it:\n  ${left.sort().join('\n  ')}\n`);
    }
  };
}
