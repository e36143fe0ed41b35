// Server-sent events: one helper for every streaming endpoint (merge progress, token streams). It sends a comment
// line as heartbeat so proxies keep the connection open, and stops everything when the client goes away.
import type { Request, Response } from 'express';

export interface SseStream {
  /** sends one event; `data` is JSON-encoded */
  send(event: string, data: unknown, id?: string): void;
  /** ends the stream (idempotent) */
  close(): void;
  readonly closed: boolean;
  /** called once, when the client disconnects or the stream is closed */
  onClose(fn: () => void): void;
  /** aborted when the stream closes: pass it to work that should stop with the client */
  readonly signal: AbortSignal;
}

export function openSse(req: Request, res: Response, options: { heartbeatMs?: number } = {}): SseStream {
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('Connection', 'keep-alive');
  res.setHeader('X-Accel-Buffering', 'no'); // nginx: do not buffer the stream
  res.flushHeaders();
  req.socket.setNoDelay(true);

  const controller = new AbortController();
  const handlers: Array<() => void> = [];
  let closed = false;
  const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), options.heartbeatMs ?? 15_000);
  heartbeat.unref();

  const finish = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    controller.abort();
    for (const fn of handlers.splice(0)) fn();
  };
  res.on('close', finish);

  return {
    send(event, data, id) {
      if (closed) return;
      let frame = `event: ${event}\n`;
      if (id !== undefined) frame += `id: ${id}\n`;
      for (const line of JSON.stringify(data).split('\n')) frame += `data: ${line}\n`;
      res.write(`${frame}\n`);
    },
    close() {
      if (closed) return;
      finish();
      res.end();
    },
    get closed() {
      return closed;
    },
    onClose(fn) {
      if (closed) fn();
      else handlers.push(fn);
    },
    signal: controller.signal,
  };
}
