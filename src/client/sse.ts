// Reads a server-sent event stream from a fetch response (merge progress, token streams) as an async iterable.
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface SseEvent<T = unknown> {
  event: string;
  data: T;
  id?: string;
}

/** The raw messages of an event stream; stopping early (or the end) releases the connection. */
export async function* readSseMessages(response: Response): AsyncGenerator<EventSourceMessage> {
  if (!response.body) return;
  const queue: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (message) => queue.push(message) });
  const decoder = new TextDecoder();
  const reader = response.body.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
      while (queue.length > 0) yield queue.shift()!;
    }
  } finally {
    // the consumer stopped early (break) or the stream ended: release the connection (the server frees its work)
    await reader.cancel().catch(() => undefined);
  }
}

export async function* readSse<T = unknown>(response: Response): AsyncGenerator<SseEvent<T>> {
  for await (const message of readSseMessages(response)) {
    yield { event: message.event ?? 'message', data: JSON.parse(message.data) as T, id: message.id };
  }
}
