// The OpenAPI document is generated from the same zod schemas that validate requests: routes are declared
// through ApiRouter, which records each operation in the OpenApiSpec and mounts a handler that parses its input.
import express, { type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { ErrorBodySchema } from './errors.js';
import { parseInput, type ParsedInput, type RequestSchemas } from './validate.js';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
  /** defaults to application/json when a schema is given */
  contentType?: string;
}

export interface Operation<S extends RequestSchemas = RequestSchemas> {
  summary: string;
  description?: string;
  tags?: string[];
  request?: S;
  /** request bodies that are not JSON (uploads): content type → schema of the form, for the document only */
  rawBody?: Record<string, z.ZodType>;
  responses: Record<number, ResponseSpec>;
}

interface Registered {
  method: Method;
  path: string;
  op: Operation;
}

type JsonSchema = Record<string, unknown>;

function toSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const out = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema;
  delete out.$schema;
  return out;
}

/** `/v1/adapters/:name` → `/v1/adapters/{name}` */
function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function parameters(where: 'path' | 'query', schema: z.ZodType | undefined): JsonSchema[] {
  if (!schema) return [];
  const json = toSchema(schema, 'input');
  const props = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required as string[] | undefined) ?? []);
  return Object.entries(props).map(([name, prop]) => {
    const { description, ...rest } = prop;
    return { name, in: where, required: where === 'path' || required.has(name), description, schema: rest };
  });
}

export class OpenApiSpec {
  private readonly operations: Registered[] = [];

  constructor(private readonly info: { title: string; version: string; description?: string }) {}

  add(method: Method, path: string, op: Operation): void {
    this.operations.push({ method, path, op });
  }

  document(): JsonSchema {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const { method, path, op } of this.operations) {
      const responses: Record<string, unknown> = {};
      for (const [status, r] of Object.entries(op.responses)) {
        responses[status] = r.schema
          ? { description: r.description, content: { [r.contentType ?? 'application/json']: { schema: toSchema(r.schema, 'output') } } }
          : { description: r.description };
      }
      responses.default = {
        description: 'error',
        content: { 'application/json': { schema: toSchema(ErrorBodySchema, 'output') } },
      };
      const content: Record<string, unknown> = {};
      if (op.request?.body) content['application/json'] = { schema: toSchema(op.request.body, 'input') };
      for (const [type, schema] of Object.entries(op.rawBody ?? {})) content[type] = { schema: toSchema(schema, 'input') };
      const key = openApiPath(path);
      paths[key] ??= {};
      paths[key][method] = {
        summary: op.summary,
        description: op.description,
        tags: op.tags,
        parameters: [...parameters('path', op.request?.params), ...parameters('query', op.request?.query)],
        requestBody: Object.keys(content).length > 0 ? { required: true, content } : undefined,
        responses,
        security: [{ bearer: [] }],
      };
    }
    return {
      openapi: '3.1.0',
      info: this.info,
      paths,
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    };
  }
}

export type Handler<S extends RequestSchemas> = (
  input: ParsedInput<S>,
  req: Request,
  res: Response,
) => unknown | Promise<unknown>;

/**
 * An express Router whose routes are declared with their schemas. A handler either answers itself (status codes
 * other than 200, streams) or returns a value, sent as JSON with status 200.
 */
export class ApiRouter {
  readonly router: Router = express.Router();

  constructor(private readonly spec: OpenApiSpec) {}

  get<S extends RequestSchemas>(path: string, op: Operation<S>, handler: Handler<S>): this {
    return this.route('get', path, op, handler);
  }
  post<S extends RequestSchemas>(path: string, op: Operation<S>, handler: Handler<S>): this {
    return this.route('post', path, op, handler);
  }
  put<S extends RequestSchemas>(path: string, op: Operation<S>, handler: Handler<S>): this {
    return this.route('put', path, op, handler);
  }
  patch<S extends RequestSchemas>(path: string, op: Operation<S>, handler: Handler<S>): this {
    return this.route('patch', path, op, handler);
  }
  delete<S extends RequestSchemas>(path: string, op: Operation<S>, handler: Handler<S>): this {
    return this.route('delete', path, op, handler);
  }

  private route<S extends RequestSchemas>(method: Method, path: string, op: Operation<S>, handler: Handler<S>): this {
    this.spec.add(method, path, op as Operation);
    const schemas = (op.request ?? {}) as S;
    this.router[method](path, async (req, res) => {
      const input = parseInput(schemas, req);
      const value = await handler(input, req, res);
      if (value !== undefined && !res.headersSent) res.json(value);
    });
    return this;
  }
}
