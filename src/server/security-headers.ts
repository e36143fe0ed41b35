// helmet's response headers, computed once: with our settings they are the same for every response (no nonces),
// so they are replayed from a list instead of running helmet's dozen middlewares per request, and the fast list
// route (./hot-list.ts) sends exactly what the express routes send.
import type { Request, RequestHandler, Response } from 'express';
import helmet, { type HelmetOptions } from 'helmet';

export type HeaderList = Array<[string, string]>;

/** The headers helmet sets with these options, read off one dry run. */
export function helmetHeaders(options?: Readonly<HelmetOptions>): HeaderList {
  const headers: HeaderList = [];
  const res = {
    setHeader: (name: string, value: unknown) => headers.push([name, String(value)]),
    removeHeader: () => undefined,
    getHeader: () => undefined,
  };
  let done = false;
  helmet(options)({} as Request, res as unknown as Response, () => (done = true));
  if (!done) throw new Error('helmet did not finish synchronously: its headers cannot be computed ahead');
  return headers;
}

/** Sets the headers of `list` on every response; `/admin/` pages get `admin` (bull-board needs inline scripts). */
export function securityHeadersMiddleware(list: HeaderList, admin: HeaderList): RequestHandler {
  return (req, res, next) => {
    for (const [name, value] of req.path.startsWith('/admin/') ? admin : list) res.setHeader(name, value);
    next();
  };
}
