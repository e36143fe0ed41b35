// /v1/routers: create (members, calibration from the suites or given prompts, fallback, rule, margin), list, show
// and remove routers. A router is then asked for by name like any model (docs/ROUTERS.md).
import type { Router } from 'express';
import { z } from 'zod';
import { CreateRouterSchema, type RouterService } from '../../eval/routers.js';
import { RouterRecordSchema, summarize } from '../../registry/routers.js';
import { AdapterNameSchema } from '../../registry/types.js';
import type { RouteDeps } from '../app.js';
import { ApiRouter } from '../openapi.js';

const RouterSummarySchema = RouterRecordSchema.omit({ center: true, centroids: true, dims: true });
const NameParams = z.object({ name: AdapterNameSchema });

export function routersRoutes(deps: RouteDeps & { routers: RouterService }): Router {
  const { routers } = deps;
  const r = new ApiRouter(deps.openapi);
  const tags = ['routers'];

  r.post(
    '/v1/routers',
    {
      summary: 'create a router: a model that answers each request with the member nearest to the prompt',
      description:
        'Body: {name, members: [adapter or merge names, or {model, category?, prompts?}], fallback?, rule?, margin?, calibrationPerMember?, replace?}. ' +
        'Without prompts, each member is calibrated on the calibration part of the suites of its category. ' +
        'The router is then a model: POST /v1/chat/completions with model = its name.',
      tags,
      request: { body: CreateRouterSchema },
      responses: { 201: { description: 'created (or replaced)', schema: z.object({ status: z.enum(['created', 'replaced']), router: RouterSummarySchema }) } },
    },
    async ({ body }, _req, res) => {
      const { status, router } = await routers.create(body);
      res.status(201).location(`/v1/routers/${router.name}`).json({ status, router: summarize(router) });
    },
  );

  r.get(
    '/v1/routers',
    { summary: 'list routers', tags, responses: { 200: { description: 'routers by name', schema: z.object({ routers: z.array(RouterSummarySchema) }) } } },
    async () => ({ routers: (await routers.store.list()).map(summarize) }),
  );

  r.get(
    '/v1/routers/:name',
    { summary: 'one router', tags, request: { params: NameParams }, responses: { 200: { description: 'the router', schema: RouterSummarySchema } } },
    async ({ params }) => summarize(await routers.store.get(params.name)),
  );

  r.delete(
    '/v1/routers/:name',
    {
      summary: 'remove a router (its members stay)',
      tags,
      request: { params: NameParams },
      responses: { 200: { description: 'removed', schema: z.object({ removed: RouterSummarySchema }) } },
    },
    async ({ params }) => ({ removed: summarize(await routers.store.remove(params.name)) }),
  );

  return r.router;
}
