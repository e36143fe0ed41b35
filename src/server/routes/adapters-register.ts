// POST /v1/adapters: register an adapter from one of three bodies: JSON {name, path} (a dir under the server's
// import dir), multipart/form-data (the two files, or one archive), or any other body, read as a zip, tar or
// tar.gz by its first bytes (whatever its Content-Type says) with the fields as query parameters.
import { rm } from 'node:fs/promises';
import type { Request } from 'express';
import { z } from 'zod';
import { InvalidInputError, TooLargeError } from '../../errors.js';
import type { ArchiveLimits } from '../../registry/archive.js';
import { stageFromArchive, stageFromMultipart, stageFromPath, type Staged } from '../../registry/ingest.js';
import type { Registry } from '../../registry/registry.js';
import { AdapterNameSchema, CategorySchema, RegisterResultSchema } from '../../registry/types.js';
import type { RouteDeps } from '../app.js';
import type { ApiRouter } from '../openapi.js';
import { describeIssues } from '../validate.js';

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
type RegisterMeta = z.output<typeof RegisterMetaSchema>;

const RegisterByPathSchema = RegisterMetaSchema.extend({
  path: z.string().min(1).meta({ description: 'the adapter dir, absolute or relative to the server\'s import dir' }),
});

function parseMeta(where: string, value: unknown): RegisterMeta {
  const result = RegisterMetaSchema.safeParse(value);
  if (!result.success) throw new InvalidInputError(describeIssues(where, result.error.issues), result.error.issues);
  return result.data;
}

/** An adapter in staging, with what the request says about it. */
type Incoming = Staged & { meta: RegisterMeta; source: string };

async function byPath(registry: Registry, importDir: string | undefined, req: Request): Promise<Incoming> {
  const parsed = RegisterByPathSchema.safeParse(req.body);
  if (!parsed.success) throw new InvalidInputError(describeIssues('body', parsed.error.issues), parsed.error.issues);
  const staged = await stageFromPath(registry.store, importDir, parsed.data.path);
  return { staged, meta: parsed.data, source: parsed.data.path };
}

async function byMultipart(registry: Registry, limits: ArchiveLimits, req: Request): Promise<Incoming> {
  const upload = await stageFromMultipart(registry.store, req, req.headers, limits);
  try {
    return { ...upload, meta: parseMeta('field', upload.fields), source: 'upload' };
  } catch (err) {
    await rm(upload.staged, { recursive: true, force: true });
    throw err;
  }
}

async function byArchive(registry: Registry, limits: ArchiveLimits, req: Request): Promise<Incoming> {
  const meta = parseMeta('query', req.query);
  return { ...(await stageFromArchive(registry.store, req, limits)), meta, source: 'upload' };
}

export function registerAdapterRoute(r: ApiRouter, deps: RouteDeps & { registry: Registry }): void {
  const { registry, config } = deps;
  const limits: ArchiveLimits = { bytes: config.uploadLimitBytes, ratio: config.archiveMaxRatio, entries: config.archiveMaxEntries };
  r.post(
    '/v1/adapters',
    {
      summary: 'register an adapter',
      description:
        'JSON {name, path}: a PEFT dir under the server\'s import dir. multipart/form-data: fields name, description, ' +
        'category, replace and the files adapter_config.json + adapter_model.safetensors, or one .zip / .tar / .tar.gz of the dir. ' +
        'Any other body (application/zip, application/gzip, application/x-tar, application/octet-stream): the archive, its kind read ' +
        'from its first bytes, with the fields as query parameters. An archive may expand to at most server.archiveMaxRatio ' +
        'times its size and hold at most server.archiveMaxEntries entries; links and paths out of it are refused. ' +
        '201 when created or replaced, 200 when the same content was registered under this name already; 409 when the name holds other content.',
      tags: ['adapters'],
      rawBody: {
        'application/json': RegisterByPathSchema,
        'multipart/form-data': RegisterMetaSchema.extend({ files: z.array(z.string()).meta({ description: 'binary parts' }) }),
        'application/zip': z.string().meta({ format: 'binary' }),
        'application/gzip': z.string().meta({ format: 'binary' }),
        'application/x-tar': z.string().meta({ format: 'binary' }),
      },
      responses: { 200: { description: 'unchanged', schema: RegisterResultSchema }, 201: { description: 'created or replaced', schema: RegisterResultSchema } },
    },
    async (_input, req, res) => {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > limits.bytes) {
        // the body is read and dropped after the answer (node does that): fetch-style clients only read an
        // answer once they have sent everything
        throw new TooLargeError(`the upload (${declared} bytes) is larger than the limit of ${limits.bytes} bytes (server.uploadLimitBytes)`, {
          limit: limits.bytes,
        });
      }
      const incoming = req.is('application/json')
        ? await byPath(registry, config.importDir, req)
        : req.is('multipart/form-data')
          ? await byMultipart(registry, limits, req)
          : await byArchive(registry, limits, req);
      const { meta } = incoming;
      const result = await registry.registerStaged(
        incoming.staged,
        {
          name: meta.name,
          description: meta.description,
          category: meta.category,
          replace: meta.replace,
          registeredBy: meta.registeredBy ?? 'api',
          source: incoming.source,
        },
        { weightsSha256: incoming.weightsSha256 },
      );
      res.status(result.status === 'unchanged' ? 200 : 201).json(result);
    },
  );
}
