// /v1/merges: queue a merge (202 + job id; the same recipe twice is one job), its status, its progress as
// server-sent events until it ends, and cancel.
import type { Router } from 'express';
import { z } from 'zod';
import { InvalidInputError } from '../../errors.js';
import { MergeOptionsSchema } from '../../merge/options.js';
import type { MergeService } from '../../queue/merges.js';
import { MergeProgressSchema, MergeRequestSchema, MergeStatusSchema, MergeTargetSchema, type MergeStatus } from '../../queue/types.js';
import { mergeWarnings } from '../../merge/warnings.js';
import type { RouteDeps } from '../app.js';
import { ApiRouter } from '../openapi.js';
import { openSse } from '../sse.js';

const IdParams = z.object({ id: z.string().regex(/^merge-[0-9a-f]{24}$/, 'a merge id looks like "merge-" and 24 hex digits') });
const TERMINAL = new Set<MergeStatus['state']>(['completed', 'failed', 'cancelled']);
const FIELDS = [...Object.keys(MergeTargetSchema.shape), ...Object.keys(MergeOptionsSchema.shape)];

/** A misspelt option ("desnity") would silently fall back to its default: name it instead. */
function refuseUnknownFields(body: unknown): void {
  const unknown = Object.keys(body && typeof body === 'object' ? body : {}).filter((k) => !FIELDS.includes(k));
  if (unknown.length > 0) {
    throw new InvalidInputError(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}; the fields are ${FIELDS.join(', ')}`);
  }
}

export function mergesRoutes(deps: RouteDeps & { merges: MergeService }): Router {
  const { merges } = deps;
  const r = new ApiRouter(deps.openapi);
  const tags = ['merges'];

  // before the schema: a misspelt field explains the schema's complaint ("desnity" → "needs a density")
  r.router.post('/v1/merges', (req, _res, next) => {
    refuseUnknownFields(req.body);
    next();
  });
  r.post(
    '/v1/merges',
    {
      summary: 'queue a merge of registered adapters',
      description:
        'Body: {adapters: [names], weights: [one per adapter], method, density?, ...merge options, name?, description?, replace?}. ' +
        '202 with the job; when this recipe (inputs by content, every option) was queued or merged before, the same job or ' +
        'result comes back with "deduplicated": true. Follow it with GET /v1/merges/{id}/events. A recipe likely to hurt ' +
        '(weights summing well above 1) is still queued, with `warnings` saying why and what to try.',
      tags,
      request: { body: MergeRequestSchema },
      responses: { 202: { description: 'queued (or deduplicated)', schema: MergeStatusSchema } },
    },
    async ({ body }, _req, res) => {
      const status = await merges.submit(body);
      const warnings = mergeWarnings(body);
      res.status(202).location(`/v1/merges/${status.id}`).json(warnings.length > 0 ? { ...status, warnings } : status);
    },
  );

  r.get(
    '/v1/merges/:id',
    {
      summary: 'status of a merge: state, progress, result and diagnostics summary, or the error',
      tags,
      request: { params: IdParams },
      responses: { 200: { description: 'the job', schema: MergeStatusSchema } },
    },
    ({ params }) => merges.status(params.id),
  );

  r.get(
    '/v1/merges/:id/events',
    {
      summary: 'server-sent events of a merge until it ends',
      description:
        'Events: "status" (the whole status, first and whenever the state changes), "progress" ({phase, done, total, etaSeconds}), ' +
        'and a final "status" whose state is completed, failed or cancelled, after which the stream ends.',
      tags,
      request: { params: IdParams },
      responses: { 200: { description: 'text/event-stream', contentType: 'text/event-stream', schema: MergeProgressSchema } },
    },
    async ({ params }, req, res) => {
      await merges.status(params.id); // 404 before the stream opens
      const sse = openSse(req, res);
      let sending = Promise.resolve();
      const sendStatus = () => {
        // statuses are read in order, so a final one is never overtaken by an older one
        sending = sending.then(async () => {
          if (sse.closed) return;
          const status = await merges.status(params.id).catch(() => undefined);
          if (!status) return sse.close();
          sse.send('status', status);
          if (TERMINAL.has(status.state)) sse.close();
        });
      };
      const stop = merges.watch(params.id, (event) => {
        if (event.type === 'progress') sse.send('progress', event.progress);
        else sendStatus();
      });
      sse.onClose(stop);
      sendStatus();
    },
  );

  r.post(
    '/v1/merges/:id/cancel',
    {
      summary: 'cancel a merge (a queued one at once, a running one within a module or two)',
      tags,
      request: { params: IdParams },
      responses: { 202: { description: 'cancelled or cancelling', schema: MergeStatusSchema } },
    },
    async ({ params }, _req, res) => {
      res.status(202).json(await merges.cancel(params.id));
    },
  );

  return r.router;
}
