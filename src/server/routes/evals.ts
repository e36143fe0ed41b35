// /v1/evals and /v1/sweeps: skill-retention evals and merge sweeps (docs/eval.md). Queue one (202 + id), its status
// and results, its progress as server-sent events until it ends, cancel, the retention heat map as PNG, and for a
// sweep, keep its best merge under a name.
import type { Response, Router } from 'express';
import { z } from 'zod';
import { renderPng } from '../../arena/chart.js';
import { EvalIdSchema, EvalStatusSchema, JobProgressSchema, RegisterBestRequestSchema, SweepIdSchema, SweepStatusSchema } from '../../eval/jobs.js';
import { EvalRequestSchema, SweepRequestSchema } from '../../eval/requests.js';
import type { EvalService } from '../../eval/service.js';
import { listSuites, SuiteItemSchema } from '../../eval/suite.js';
import { AdapterRecordSchema } from '../../registry/types.js';
import type { RouteDeps } from '../app.js';
import { ApiRouter } from '../openapi.js';
import { openSse } from '../sse.js';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

/** Status events until the job ends: "status" first and on every state change, "progress" in between. */
function followJob(evals: EvalService, id: string, status: () => Promise<{ state: string }>, req: Parameters<typeof openSse>[0], res: Response): void {
  const sse = openSse(req, res);
  let sending = Promise.resolve();
  const sendStatus = () => {
    // statuses are read in order, so a final one is never overtaken by an older one
    sending = sending.then(async () => {
      if (sse.closed) return;
      const current = await status().catch(() => undefined);
      if (!current) return sse.close();
      sse.send('status', current);
      if (TERMINAL.has(current.state)) sse.close();
    });
  };
  const stop = evals.watch(id, (event) => {
    if (event.type === 'progress') {
      sse.send('progress', event.progress);
      // a sweep's points change the ranking: send the status after each finished point
      if (event.progress.phase === 'merge') sendStatus();
    } else sendStatus();
  });
  sse.onClose(stop);
  sendStatus();
}

async function sendPng(res: Response, svg: string): Promise<void> {
  const png = await renderPng(svg);
  res.status(200).type('image/png').setHeader('Cache-Control', 'no-store');
  res.end(png);
}

export function evalsRoutes(deps: RouteDeps & { evals: EvalService }): Router {
  const { evals } = deps;
  const r = new ApiRouter(deps.openapi);
  const png = { 200: { description: 'PNG image', contentType: 'image/png', schema: z.string().meta({ format: 'binary' }) } };

  r.get(
    '/v1/suites',
    {
      summary: 'the suites evals and sweeps can name, with their item format',
      tags: ['evals'],
      responses: { 200: { description: 'suite names', schema: z.object({ suites: z.array(z.string()), itemFormat: z.unknown() }) } },
    },
    async () => ({ suites: await listSuites(evals.suitesDir), itemFormat: z.toJSONSchema(SuiteItemSchema) }),
  );

  // ---- evals
  const evalParams = z.object({ id: EvalIdSchema });
  r.post(
    '/v1/evals',
    {
      summary: 'score models on skill suites: perplexity, check pass rate and retention per category',
      description:
        'Body: {models?, suites?, items?, experts?, format?, checks?, maxTokens?}. The base model and each category\'s expert ' +
        '(the adapter registered with that category) are always scored. 202 with the job; follow it with GET /v1/evals/{id}/events.',
      tags: ['evals'],
      request: { body: EvalRequestSchema },
      responses: { 202: { description: 'queued', schema: EvalStatusSchema } },
    },
    async ({ body }, _req, res) => {
      const status = await evals.submitEval(body);
      res.status(202).location(`/v1/evals/${status.id}`).json(status);
    },
  );
  r.get(
    '/v1/evals/:id',
    { summary: 'status of an eval, and its report once completed', tags: ['evals'], request: { params: evalParams }, responses: { 200: { description: 'the eval', schema: EvalStatusSchema } } },
    ({ params }) => evals.evalStatus(params.id),
  );
  r.get(
    '/v1/evals/:id/events',
    {
      summary: 'server-sent events of an eval until it ends',
      description: 'Events: "status" (first, on state changes, and last with state completed, failed or cancelled) and "progress" ({phase, done, total}).',
      tags: ['evals'],
      request: { params: evalParams },
      responses: { 200: { description: 'text/event-stream', contentType: 'text/event-stream', schema: JobProgressSchema } },
    },
    async ({ params }, req, res) => {
      await evals.evalStatus(params.id); // 404 before the stream opens
      followJob(evals, params.id, () => evals.evalStatus(params.id), req, res);
    },
  );
  r.post(
    '/v1/evals/:id/cancel',
    { summary: 'cancel an eval', tags: ['evals'], request: { params: evalParams }, responses: { 202: { description: 'cancelled or cancelling', schema: EvalStatusSchema } } },
    async ({ params }, _req, res) => {
      res.status(202).json(await evals.cancel(params.id, 'eval'));
    },
  );
  r.get(
    '/v1/evals/:id/heatmap.png',
    { summary: 'retention by model and category, as a PNG heat map', tags: ['evals'], request: { params: evalParams }, responses: png },
    async ({ params }, _req, res) => sendPng(res, await evals.heatmap(params.id, 'eval')),
  );

  // ---- sweeps
  const sweepParams = z.object({ id: SweepIdSchema });
  r.post(
    '/v1/sweeps',
    {
      summary: 'search merge settings for the recipe that keeps every skill',
      description:
        'Body: {adapters?, search: grid|random, space: {method, density, weights, rank}, samples?, seed?, options?, suites?, items?, experts?}. ' +
        'Each point is queued as a merge job and scored on the suites; the ranking is by the worst category\'s retention, then the mean. ' +
        'Interrupted sweeps resume where they were. 202 with the job; follow it with GET /v1/sweeps/{id}/events.',
      tags: ['sweeps'],
      request: { body: SweepRequestSchema },
      responses: { 202: { description: 'queued', schema: SweepStatusSchema } },
    },
    async ({ body }, _req, res) => {
      const status = await evals.submitSweep(body);
      res.status(202).location(`/v1/sweeps/${status.id}`).json(status);
    },
  );
  r.get(
    '/v1/sweeps/:id',
    { summary: 'status of a sweep: points scored so far, ranked, and the best', tags: ['sweeps'], request: { params: sweepParams }, responses: { 200: { description: 'the sweep', schema: SweepStatusSchema } } },
    ({ params }) => evals.sweepStatus(params.id),
  );
  r.get(
    '/v1/sweeps/:id/events',
    {
      summary: 'server-sent events of a sweep until it ends',
      description: 'Events: "status" (first, after each finished point, on state changes, and last) and "progress" ({phase, done, total, points}).',
      tags: ['sweeps'],
      request: { params: sweepParams },
      responses: { 200: { description: 'text/event-stream', contentType: 'text/event-stream', schema: JobProgressSchema } },
    },
    async ({ params }, req, res) => {
      await evals.sweepStatus(params.id);
      followJob(evals, params.id, () => evals.sweepStatus(params.id), req, res);
    },
  );
  r.post(
    '/v1/sweeps/:id/cancel',
    { summary: 'cancel a sweep (merges already queued finish)', tags: ['sweeps'], request: { params: sweepParams }, responses: { 202: { description: 'cancelled or cancelling', schema: SweepStatusSchema } } },
    async ({ params }, _req, res) => {
      res.status(202).json(await evals.cancel(params.id, 'sweep'));
    },
  );
  r.post(
    '/v1/sweeps/:id/register',
    {
      summary: "register the sweep's best merge (or a given point's) under a name",
      tags: ['sweeps'],
      request: { params: sweepParams, body: RegisterBestRequestSchema },
      responses: {
        201: {
          description: 'registered',
          schema: z.object({ point: z.unknown(), adapter: AdapterRecordSchema, status: z.enum(['created', 'replaced', 'unchanged']) }),
        },
      },
    },
    async ({ params, body }, _req, res) => {
      res.status(201).json(await evals.registerPoint(params.id, body));
    },
  );
  r.get(
    '/v1/sweeps/:id/heatmap.png',
    { summary: 'retention by recipe and category, as a PNG heat map (best first)', tags: ['sweeps'], request: { params: sweepParams }, responses: png },
    async ({ params }, _req, res) => sendPng(res, await evals.heatmap(params.id, 'sweep')),
  );

  return r.router;
}
