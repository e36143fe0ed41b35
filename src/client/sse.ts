// Reads a server-sent event stream from a fetch response (merge progress, token streams) as an async iterable.
import { createParser, type EventSourceMessage } from 'eventsource-parser';

export interface SseEvent<T = unknown> {
  event: string;
  data: T;
  id?: string;
}

export async function* readSse<T = unknown>(response: Response): AsyncGenerator<SseEvent<T>> {
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
      while (queue.length > 0) {
        const message = queue.shift()!;
        yield { event: message.event ?? 'message', data: JSON.parse(message.data) as T, id: message.id };
      }
    }
  } finally {
    // the consumer stopped early (break) or the stream ended: release the connection
    await reader.cancel().catch(() => undefined);
  }
}
