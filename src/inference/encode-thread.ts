// Worker thread entry: encodes prompts for the engine off the server's main thread (off-thread-tokenizer.ts says why),
// and computes long prompts' features for text routers. It loads the model dir's tokenizer files as the main thread
// does, so its ids are the same.
import { parentPort, workerData } from 'node:worker_threads';
import { serializeError } from './engine/protocol.js';
import { textFeature } from './engine/text-features.js';
import type { EncodeJob, EncodeReply, EncodeThreadData } from './off-thread-tokenizer.js';
import { ModelTokenizer } from './tokenizer.js';

const port = parentPort!;
try {
  const tokenizer = await ModelTokenizer.load((workerData as EncodeThreadData).dir);
  port.on('message', (job: EncodeJob) => {
    if (job.kind === 'text-feature') {
      const { buckets, weights } = textFeature(job.text);
      port.postMessage({ id: job.id, buckets, weights } satisfies EncodeReply, [buckets.buffer as ArrayBuffer, weights.buffer as ArrayBuffer]);
      return;
    }
    let reply: EncodeReply;
    try {
      const { ids, targetStart } =
        job.kind === 'score'
          ? tokenizer.encodeForScoring(job.context, job.continuation, job.limit)
          : {
              ids: job.kind === 'chat' ? tokenizer.encodeChat(job.messages, { limit: job.limit }) : tokenizer.encode(job.text, { addSpecialTokens: job.addSpecialTokens, limit: job.limit }),
              targetStart: 0,
            };
      reply = { id: job.id, ids: new Uint32Array(new ArrayBuffer(ids.length * 4)), targetStart };
      reply.ids.set(ids);
    } catch (err) {
      reply = { id: job.id, error: serializeError(err) };
    }
    port.postMessage(reply, 'ids' in reply ? [reply.ids.buffer as ArrayBuffer] : []);
  });
  port.postMessage({ ready: true } satisfies EncodeReply);
} catch (err) {
  port.postMessage({ failed: serializeError(err) } satisfies EncodeReply);
}
