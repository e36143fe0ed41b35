// A streamed chat answer from the API, shown through a StreamedText: the text grows as tokens arrive, and the
// final text (with a footer) is delivered when the stream ends.
import type { LoraforgeClient } from '../client/index.js';
import { NotFoundError } from '../errors.js';
import { describeFailure } from './failures.js';
import { formatNumber } from './format.js';
import { unknownAdapterMessage } from './options.js';
import type { StreamedText } from './streamed-text.js';

type ChatBody = Parameters<LoraforgeClient['inference']['chatStream']>[0];

export interface GenerationResult {
  text: string;
  completionTokens: number | null;
  finishReason: string | null;
  seconds: number;
  /** the stream broke after some text was shown: that text stays, with the reason under it */
  interrupted: unknown;
  /** the member that answered, when the model is a router */
  routedTo: string | null;
}

/** The line under the header naming the member a router chose for this answer (a blend's are joined by '+'). */
const routedLine = (model: string) => (model.includes('+') ? `-# 🧭 blended ${model.split('+').join(' + ')}\n` : `-# 🧭 routed to ${model}\n`);

/**
 * Streams `body` into `out` under `header`; returns the answer (without header and footer). A failure before any
 * text arrived is thrown (the caller answers it like any failure); one after is shown under the partial answer.
 * When the model is a router, the member it chose is named under the header.
 */
export async function streamAnswer(
  api: LoraforgeClient,
  body: ChatBody,
  out: StreamedText,
  header: string,
  options: { signal?: AbortSignal } = {},
): Promise<GenerationResult> {
  const started = Date.now();
  let text = '';
  let completionTokens: number | null = null;
  let finishReason: string | null = null;
  let routedTo: string | null = null;
  const onRouted = (model: string) => {
    routedTo = model;
    header += routedLine(model);
    out.set(header);
  };
  try {
    for await (const chunk of api.inference.chatStream(body, { signal: options.signal, onRouted })) {
      const choice = chunk.choices[0];
      if (choice?.delta.content) {
        text += choice.delta.content;
        out.set(`${header}${text}`);
      }
      if (choice?.finish_reason) finishReason = choice.finish_reason;
      if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
    }
  } catch (err) {
    if (text.length > 0) {
      await out.finish(`${header}${text}

-# ✂️ the answer was cut off. ${describeFailure(err).text}`);
      return { text, completionTokens, finishReason, seconds: (Date.now() - started) / 1000, interrupted: err, routedTo };
    }
    // the API knows the model is unknown; the list of models says which names are close
    if (err instanceof NotFoundError) {
      const known = (await api.inference.models().catch(() => null))?.map((m) => m.id);
      if (known && !known.includes(body.model)) throw new NotFoundError(unknownAdapterMessage(body.model, known));
    }
    throw err;
  }
  const seconds = (Date.now() - started) / 1000;
  const cut = finishReason === 'length' ? ' · stopped at max_tokens' : '';
  const tokens = completionTokens !== null ? `${completionTokens} tokens in ` : '';
  const shown = text.length > 0 ? text : '*(the model answered nothing)*';
  await out.finish(`${header}${shown}\n-# ${tokens}${formatNumber(seconds, 1)} s${cut}`);
  return { text, completionTokens, finishReason, seconds, interrupted: null, routedTo };
}
