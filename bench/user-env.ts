// Imported first by the benches that time the engine in process: they run under the malloc settings that
// bin/loraforge.js's shebang gives every user's process (read from that line, so the two cannot drift),
// re-running themselves with them when they are missing, so that their figures are those a user meets.
// BENCH_MALLOC=default keeps glibc's defaults (to measure what the settings change).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const shebang = readFileSync(new URL('../bin/loraforge.js', import.meta.url), 'utf8').split('\n', 1)[0]!;
const match = /GLIBC_TUNABLES=\$\{GLIBC_TUNABLES\}:(\S+)/.exec(shebang);
if (!match) throw new Error(`bench/user-env.ts: no GLIBC_TUNABLES in bin/loraforge.js's shebang (${shebang})`);
const OURS = match[1]!.split(':');
const own = (env: NodeJS.ProcessEnv) => (env.GLIBC_TUNABLES ?? '').split(':').filter(Boolean);

/** `env` without the shebang's settings: what a user's own processes (python, llama.cpp) run with. */
export function withoutOurTunables(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out = { ...env };
  const rest = own(env).filter((t) => !OURS.includes(t));
  if (rest.length) out.GLIBC_TUNABLES = rest.join(':');
  else delete out.GLIBC_TUNABLES;
  return out;
}

if (process.env.BENCH_MALLOC !== 'default' && !OURS.every((t) => own(process.env).includes(t))) {
  const env = { ...process.env, GLIBC_TUNABLES: [...own(process.env), ...OURS].join(':') };
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env });
  process.exit(r.status ?? 1);
}
