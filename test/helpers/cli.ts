// The real CLI as a user runs it (a child process from the sources, through tsx), its exit code and output kept
// whether it succeeds or not.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `loraforge <args>`, with `--server <server>` appended when given. */
export async function runCli(args: string[], options: { server?: string; timeout?: number } = {}): Promise<CliResult> {
  const all = options.server ? [...args, '--server', options.server] : args;
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts'), ...all], {
      cwd: repoRoot,
      env: { ...process.env, LORAFORGE_LOG_LEVEL: 'warn' },
      timeout: options.timeout ?? 240_000,
      maxBuffer: 1 << 24,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    // a process killed (timeout) or cut off (output past maxBuffer) has no exit code: -1
    const e = err as { code?: unknown; stdout: string; stderr: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout, stderr: e.stderr };
  }
}
