// /v1/adapters: list, show, remove, download, and which adapters can be merged with one; registering (by path
// or upload) is ./adapters-register.ts. One function per endpoint, composed by `adaptersRoutes`.
import type { Router } from 'express';
import { create as createTar } from 'tar';
import { z } from 'zod';
import { UnavailableError } from '../../errors.js';
import type { Registry } from '../../registry/registry.js';
import { ADAPTER_FILES } from '../../registry/store.js';
import { AdapterDetailSchema, AdapterNameSchema, AdapterRecordSchema, CompatibilitySchema } from '../../registry/types.js';
import type { RouteDeps } from '../app.js';
import { ApiRouter } from '../openapi.js';
import { queryFlag } from '../validate.js';
import { registerAdapterRoute } from './adapters-register.js';

const NameParams = z.object({ name: AdapterNameSchema });
const tags = ['adapters'];

/** The list's ETag: the registry's version, bumped by every change. */
export const listEtag = (version: string) => `W/"registry-${version}"`;

/** If-None-Match against a weak tag: any listed tag equal to it, weak or not, or `*` (RFC 9110 13.1.2). */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const opaque = etag.replace(/^W\//, '');
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === opaque;
  });
}

export function adaptersRoutes(deps: RouteDeps & { registry: Registry }): Router {
  const r = new ApiRouter(deps.openapi);
  listRoute(r, deps.registry);
  registerAdapterRoute(r, deps);
  showRoute(r, deps.registry);
  removeRoute(r, deps.registry);
  compatibleRoute(r, deps.registry);
  downloadRoute(r, deps.registry);
  return r.router;
}

function listRoute(r: ApiRouter, registry: Registry): void {
  r.get(
    '/v1/adapters',
    {
      summary: 'list registered adapters',
      tags,
      request: { query: z.object({ category: z.string().optional(), baseModel: z.string().optional() }) },
      responses: { 200: { description: 'adapters by name', schema: z.object({ adapters: z.array(AdapterRecordSchema) }) } },
    },
    async ({ query }, req, res) => {
      const snapshot = await registry.snapshot();
      if (!query.category && !query.baseModel) {
        const etag = listEtag(snapshot.version);
        res.setHeader('ETag', etag);
        // evaluated here, not by express: its freshness check ignores If-None-Match when the request also says
        // Cache-Control: no-cache, which fetch adds to every conditional request. Usually answered by ../hot-list.ts.
        if (matchesEtag(req.headers['if-none-match'], etag)) {
          res.status(304).end();
          return;
        }
        res.type('json').send(snapshot.json);
        return;
      }
      let adapters = snapshot.records;
      if (query.category) adapters = adapters.filter((a) => a.category === query.category);
      if (query.baseModel) adapters = adapters.filter((a) => a.baseModel === query.baseModel);
      return { adapters };
    },
  );
}

function showRoute(r: ApiRouter, registry: Registry): void {
  r.get(
    '/v1/adapters/:name',
    {
      summary: 'one adapter: facts, module shapes, and for merges the recipe and diagnostics',
      tags,
      request: { params: NameParams },
      responses: { 200: { description: 'the adapter', schema: AdapterDetailSchema } },
    },
    ({ params }) => registry.get(params.name),
  );
}

function removeRoute(r: ApiRouter, registry: Registry): void {
  r.delete(
    '/v1/adapters/:name',
    {
      summary: 'remove an adapter (its files go when no name refers to them)',
      description: 'Refused (409) while a registered merge was built from it, unless ?force.',
      tags,
      request: { params: NameParams, query: z.object({ force: queryFlag }) },
      responses: { 200: { description: 'removed', schema: z.object({ removed: AdapterRecordSchema }) } },
    },
    async ({ params, query }) => ({ removed: await registry.remove(params.name, { force: query.force }) }),
  );
}

function compatibleRoute(r: ApiRouter, registry: Registry): void {
  r.get(
    '/v1/adapters/:name/compatible',
    {
      summary: 'which adapters can be merged with this one (same base model, same shapes for shared modules)',
      tags,
      request: { params: NameParams },
      responses: { 200: { description: 'every other adapter with the verdict', schema: z.object({ adapter: z.string(), adapters: z.array(CompatibilitySchema) }) } },
    },
    async ({ params }) => ({ adapter: params.name, adapters: await registry.compatible(params.name) }),
  );
}

function downloadRoute(r: ApiRouter, registry: Registry): void {
  r.get(
    '/v1/adapters/:name/download',
    {
      summary: 'the PEFT dir as a tar (<name>/adapter_config.json, <name>/adapter_model.safetensors)',
      tags,
      request: { params: NameParams },
      responses: { 200: { description: 'tar archive', contentType: 'application/x-tar', schema: z.string().meta({ format: 'binary' }) } },
    },
    async ({ params }, _req, res) => {
      const dir = await registry.pathOf(params.name);
      if (!(await registry.store.has((await registry.record(params.name)).sha256))) {
        throw new UnavailableError(`the files of "${params.name}" are missing from the store at ${dir}`);
      }
      res.setHeader('Content-Type', 'application/x-tar');
      res.setHeader('Content-Disposition', `attachment; filename="${params.name}.tar"`);
      const tar = createTar({ cwd: dir, portable: true, prefix: params.name }, [...ADAPTER_FILES]);
      tar.on('error', (err: unknown) => res.destroy(err as Error));
      tar.pipe(res);
    },
  );
}
