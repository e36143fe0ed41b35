// /v1/adapters from the client side: register (by server path or by uploading a local dir or archive), list,
// show, remove, compatibility, download.
import path from 'node:path';
import type { AdapterDetail, AdapterRecord, Compatibility, RegisterResult } from '../registry/types.js';
import type { HttpClient } from './http.js';
import { multipartBody, type FilePart } from './multipart.js';

export interface RegisterOptions {
  name: string;
  description?: string;
  category?: string;
  replace?: boolean;
  registeredBy?: string;
}

const enc = encodeURIComponent;

export class AdaptersClient {
  constructor(private readonly http: HttpClient) {}

  async list(filter: { category?: string; baseModel?: string } = {}): Promise<AdapterRecord[]> {
    return (await this.http.json<{ adapters: AdapterRecord[] }>('GET', '/v1/adapters', { query: filter })).adapters;
  }

  get(name: string): Promise<AdapterDetail> {
    return this.http.json('GET', `/v1/adapters/${enc(name)}`);
  }

  /** Registers a PEFT dir that is on the server, under its import dir. */
  registerPath(serverPath: string, options: RegisterOptions): Promise<RegisterResult> {
    return this.http.json('POST', '/v1/adapters', { json: { ...options, path: serverPath } });
  }

  /** Uploads a local PEFT dir (its two files), or a local .zip / .tar.gz of one; streamed from disk. */
  async upload(localPath: string, options: RegisterOptions): Promise<RegisterResult> {
    const fields: Record<string, string> = {};
    for (const [key, value] of Object.entries(options)) if (value !== undefined) fields[key] = String(value);
    const files: FilePart[] = /\.(zip|tar\.gz|tgz|tar)$/i.test(localPath)
      ? [{ name: 'archive', filename: path.basename(localPath), path: localPath }]
      : ['adapter_config.json', 'adapter_model.safetensors'].map((file) => ({ name: file, filename: file, path: path.join(localPath, file) }));
    const { body, headers } = await multipartBody(fields, files);
    return this.http.json('POST', '/v1/adapters', { body, headers, noTimeout: true });
  }

  async remove(name: string, options: { force?: boolean } = {}): Promise<AdapterRecord> {
    const result = await this.http.json<{ removed: AdapterRecord }>('DELETE', `/v1/adapters/${enc(name)}`, {
      query: { force: options.force ? 'true' : undefined },
    });
    return result.removed;
  }

  async compatible(name: string): Promise<Compatibility[]> {
    return (await this.http.json<{ adapters: Compatibility[] }>('GET', `/v1/adapters/${enc(name)}/compatible`)).adapters;
  }

  /** The adapter's PEFT dir as a tar stream (`<name>/adapter_config.json`, `<name>/adapter_model.safetensors`). */
  async download(name: string): Promise<ReadableStream<Uint8Array>> {
    const response = await this.http.send('GET', `/v1/adapters/${enc(name)}/download`, { noTimeout: true, headers: { accept: 'application/x-tar' } });
    return response.body!;
  }
}
