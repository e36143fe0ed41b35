// /v1/adapters: register (by path under the import dir, or by upload), list, show, remove, download, and which
// adapters can be merged with one.
import { rm } from 'node:fs/promises';
import type { Router } from 'express';
import { create as createTar } from 'tar';
import { z } from 'zod';
import { InvalidInputError, TooLargeError, UnavailableError } from '../../errors.js';
import { archiveKindOf, stageFromArchive, stageFromMultipart, stageFromPath } from '../../registry/ingest.js';
import type { Registry } from '../../registry/registry.js';
import { ADAPTER_FILES } from '../../registry/store.js';
import {
  AdapterDetailSchema,
  AdapterNameSchema,
  AdapterRecordSchema,
  CategorySchema,
  CompatibilitySchema,
  RegisterResultSchema,
} from '../../registry/types.js';
import type { RouteDeps } from '../app.js';
import { ApiRouter } from '../openapi.js';
import { describeIssues, queryFlag } from '../validate.js';

const boolField = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', ''])])
  .optional()
  .transform((v) => v === true || v === 'true' || v === '1' || v === '');

/** Metadata of a registration; sent as JSON fields, multipart fields, or query parameters of an archive upload. */
const RegisterMetaSchema = z.object({
  name: AdapterNameSchema,
  description: z.string().max(2000).optional(),
  category: CategorySchema.optional(),
  replace: boolField.meta({ description: 'replace other content registered under this name' }),
  registeredBy: z.string().min(1).max(200).optional().meta({ description: 'who registers it (the bot sends the Discord user)' }),
});

const RegisterByPathSchema = RegisterMetaSchema.extend({
  path: z.string().min(1).meta({ description: 'the adapter dir, absolute or relative to the server\'s import dir' }),
});

const NameParams = z.object({ name: AdapterNameSchema });

function parseMeta(where: string, value: unknown): z.output<typeof RegisterMetaSchema> {
  const result = RegisterMetaSchema.safeParse(value);
  if (!result.success) throw new InvalidInputError(describeIssues(where, result.error.issues), result.error.issues);
  return result.data;
}

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
  const { registry } = deps;
  const limit = deps.config.uploadLimitBytes;
  const r = new ApiRouter(deps.openapi);
  const tags = ['adapters'];

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

  r.post(
    '/v1/adapters',
    {
      summary: 'register an adapter',
      description:
        'JSON {name, path}: a PEFT dir under the server\'s import dir. multipart/form-data: fields name, description, ' +
        'category, replace and the files adapter_config.json + adapter_model.safetensors, or one .zip / .tar.gz of the dir. ' +
        'application/zip or application/gzip body: the archive, with the fields as query parameters. ' +
        '201 when created or replaced, 200 when the same content was registered under this name already; 409 when the name holds other content.',
      tags,
      rawBody: {
        'application/json': RegisterByPathSchema,
        'multipart/form-data': RegisterMetaSchema.extend({ files: z.array(z.string()).meta({ description: 'binary parts' }) }),
        'application/zip': z.string().meta({ format: 'binary' }),
        'application/gzip': z.string().meta({ format: 'binary' }),
      },
      responses: { 200: { description: 'unchanged', schema: RegisterResultSchema }, 201: { description: 'created or replaced', schema: RegisterResultSchema } },
    },
    async (_input, req, res) => {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > limit) {
        // read and drop the body: fetch-style clients only see an answer once they have sent everything
        req.resume();
        throw new TooLargeError(`the upload (${declared} bytes) is larger than the limit of ${limit} bytes (server.uploadLimitBytes)`, { limit });
      }
      const type = req.headers['content-type'] ?? '';
      let staged: string;
      let weightsSha256: string | undefined;
      let meta: z.output<typeof RegisterMetaSchema>;
      if (req.is('application/json')) {
        const parsed = RegisterByPathSchema.safeParse(req.body);
        if (!parsed.success) throw new InvalidInputError(describeIssues('body', parsed.error.issues), parsed.error.issues);
        meta = parsed.data;
        staged = await stageFromPath(registry.store, deps.config.importDir, parsed.data.path);
      } else if (req.is('multipart/form-data')) {
        const upload = await stageFromMultipart(registry.store, req, req.headers, limit);
        ({ staged, weightsSha256 } = upload);
        try {
          meta = parseMeta('field', upload.fields);
        } catch (err) {
          await rm(staged, { recursive: true, force: true });
          throw err;
        }
      } else {
        const kind = archiveKindOf(String(req.query.filename ?? ''), type);
        if (!kind) {
          throw new InvalidInputError(
            `unsupported Content-Type "${type}": send JSON {name, path}, multipart/form-data with the two files, or a zip / tar.gz body`,
          );
        }
        meta = parseMeta('query', req.query);
        ({ staged, weightsSha256 } = await stageFromArchive(registry.store, req, kind, limit).catch((err: unknown) => {
          req.resume();
          throw err;
        }));
      }
      const result = await registry.registerStaged(
        staged,
        {
          name: meta.name,
          description: meta.description,
          category: meta.category,
          replace: meta.replace,
          registeredBy: meta.registeredBy ?? 'api',
          source: req.is('application/json') ? (req.body as { path: string }).path : 'upload',
        },
        { weightsSha256 },
      );
      res.status(result.status === 'unchanged' ? 200 : 201).json(result);
    },
  );

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

  return r.router;
}
