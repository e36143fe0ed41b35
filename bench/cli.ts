// npm run bench:cli [-- --runs 15]
// Start-up of the installed command (bin/loraforge.js → dist/, so `npm run build` first) against a bare
// `node -e 0`, interleaved run by run so that a busy moment hurts both alike. Target (issue 15): `--help` within
// 3× of bare node. Medians; the machine is shared and noisy, so the ratio is the figure to compare.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './stats.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin/loraforge.js');
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 15;

// the commands run as a shell runs them, through bin/loraforge.js's shebang (env, then node)
const CASES: [string, string, string[]][] = [
  ['node -e 0', process.execPath, ['-e', '0']],
  ['loraforge --help', bin, ['--help']],
  ['loraforge merge --help', bin, ['merge', '--help']],
  ['loraforge inspect (bad dir)', bin, ['inspect', '--no-norms', path.join(root, 'no-such-adapter')]],
];

const main = path.join(root, 'dist/bundle/main.js');
if (!existsSync(main)) {
  console.error('bench:cli times the built CLI: run `npm run build` first');
  process.exit(2);
}
if (statSync(path.join(root, 'src/cli/main.ts')).mtimeMs > statSync(main).mtimeMs) console.warn('warning: src/cli is newer than dist/: run `npm run build` for current figures');

const times = CASES.map(() => [] as number[]);
for (let run = -1; run < RUNS; run++) {
  CASES.forEach(([label, command, args], i) => {
    const t = performance.now();
    const r = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const ms = performance.now() - t;
    // inspect of a missing dir is a clean exit 2; anything else failing means the figure is not start-up
    if (r.status !== 0 && !(label.includes('bad dir') && r.status === 2)) throw new Error(`${label} exited ${r.status}: ${r.stderr}`);
    if (run >= 0) times[i]!.push(ms); // run -1 warms the file cache
  });
}

const base = median(times[0]!);
console.log(`start-up, median of ${RUNS} interleaved runs (${process.version}; shared machine: compare the ratios)`);
console.log(`${'command'.padEnd(30)}${'ms'.padStart(8)}${'× node -e 0'.padStart(14)}`);
CASES.forEach(([label], i) => {
  const m = median(times[i]!);
  console.log(`${label.padEnd(30)}${m.toFixed(0).padStart(8)}${(m / base).toFixed(2).padStart(14)}`);
});
