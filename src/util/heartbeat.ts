// A liveness file for processes that serve no HTTP (the bot): rewritten every `everyMs` while `healthy()` says so,
// so a health check elsewhere (Docker's HEALTHCHECK) can tell a working process from a stuck one by its age.
import { rename, stat, writeFile } from 'node:fs/promises';

/** how often a heartbeat is written; a check treats three missed beats as a dead process */
export const HEARTBEAT_EVERY_MS = 30_000;

export function startHeartbeat(file: string, healthy: () => boolean, everyMs = HEARTBEAT_EVERY_MS): () => void {
  const beat = async () => {
    if (!healthy()) return;
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, `${new Date().toISOString()}\n`);
    await rename(tmp, file);
  };
  void beat().catch(() => undefined);
  const timer = setInterval(() => void beat().catch(() => undefined), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Seconds since the last heartbeat, or null when there is none. */
export async function heartbeatAgeSeconds(file: string): Promise<number | null> {
  try {
    return (Date.now() - (await stat(file)).mtimeMs) / 1000;
  } catch {
    return null;
  }
}
