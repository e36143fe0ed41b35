// Hostile and broken uploads against ONE real `loraforge serve` process (from sources, through tsx): archive
// bombs by size and by ratio, too many entries, paths out of the archive, links, lying zip headers, truncations,
// garbage, wrong or absent content types, chunked bodies, clients that go away mid-upload. After each: a 4xx JSON
// answer with one bounded line, the process still answering /healthz, nothing left in staging, nothing
// registered. The archives are written by hand (tar) or by yazl and patched, so each corruption is exact.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yazl from 'yazl';
import { writeTestAdapter } from '../helpers/adapters.js';
import { deletePrefix, TEST_REDIS_URL, testPrefix, testRedis } from '../helpers/redis.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MiB = 1024 ** 2;
// above the 16 MiB floor, so the ratio bound (100x) is what stops a bomb of zeros, and the size bound one of mixed bytes
const LIMIT = 32 * MiB;

let work: string;
let dataDir: string;
let url: string;
let server: ChildProcess;
let stderr = '';
let config: Buffer;
let weights: Buffer;
const prefix = testPrefix('hostile');

// ---- archives by hand ------------------------------------------------------------------------------------------

/** One tar entry (ustar): `type` 0 file, 1 hard link, 2 symlink, 5 dir, x pax header; `size` may lie. */
function tarEntry(name: string, body: Buffer | string = '', opts: { type?: string; link?: string; size?: number } = {}): Buffer {
  const data = Buffer.from(body);
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, 'latin1');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${(opts.size ?? data.length).toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(opts.type ?? '0', 156);
  if (opts.link) h.write(opts.link, 157);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

/** A pax header giving the next entry a path of any length. */
function paxPath(p: string): Buffer {
  const rest = ` path=${p}\n`;
  let len = rest.length + 1;
  while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
  return tarEntry('PaxHeader', `${len}${rest}`, { type: 'x' });
}

const tarOf = (...entries: Buffer[]) => Buffer.concat([...entries, Buffer.alloc(1024)]);
const adapterEntries = (dir = 'my-adapter/') => [tarEntry(`${dir}adapter_config.json`, config), tarEntry(`${dir}adapter_model.safetensors`, weights)];

async function zipOf(entries: Array<{ name: string; data: Buffer; mode?: number; compress?: boolean }>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const e of entries) zip.addBuffer(e.data, e.name, { mode: e.mode, compress: e.compress ?? true });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Rewrites the uncompressed size in the central directory record of `name` (what yauzl trusts). */
function lieInCentralDirectory(zip: Buffer, name: string, size: number): Buffer {
  const out = Buffer.from(zip);
  for (let i = out.indexOf('PK\x01\x02', 0, 'latin1'); i >= 0; i = out.indexOf('PK\x01\x02', i + 4, 'latin1')) {
    const nameLength = out.readUInt16LE(i + 28);
    if (out.toString('latin1', i + 46, i + 46 + nameLength) === name) {
      out.writeUInt32LE(size, i + 24);
      return out;
    }
  }
  throw new Error(`no ${name} in the zip`);
}

// ---- the process and what is checked after each request ----------------------------------------------------

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

const staging = async () => readdir(path.join(dataDir, 'tmp')).catch(() => [] as string[]);
const registered = async () => ((await (await fetch(`${url}/v1/adapters`)).json()) as { adapters: Array<{ name: string }> }).adapters.map((a) => a.name);

/** The process answers, no staging is left (after the client went away, within a few seconds), nothing registered. */
async function expectUnharmed(names: string[] = []): Promise<void> {
  expect(server.exitCode, stderr).toBeNull();
  expect((await fetch(`${url}/healthz`)).status).toBe(200);
  for (let i = 0; i < 50 && (await staging()).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
  expect(await staging()).toEqual([]);
  expect((await registered()).sort()).toEqual(names.sort());
}

/** A refusal: 4xx (one of `statuses`), a JSON error of one line, at most 1000 characters, matching `message`. */
async function expectRefused(res: Response, statuses: number[], message?: RegExp): Promise<string> {
  const body = (await res.json()) as { error?: { code: string; message: string } };
  expect(statuses, JSON.stringify(body)).toContain(res.status);
  expect(body.error?.message).toBeTypeOf('string');
  const text = body.error!.message;
  expect(text).not.toMatch(/\n/);
  expect(text.length).toBeLessThanOrEqual(1000);
  if (message) expect(text).toMatch(message);
  await expectUnharmed();
  return text;
}

const postRaw = (body: Buffer | ReadableStream | undefined, type: string | undefined, query = 'name=hostile') =>
  fetch(`${url}/v1/adapters?${query}`, {
    method: 'POST',
    headers: type ? { 'content-type': type } : {},
    body,
    ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
  } as RequestInit);

const postForm = (file: Buffer, fileName: string, extra: Record<string, string> = {}) => {
  const form = new FormData();
  form.set('name', 'hostile');
  for (const [k, v] of Object.entries(extra)) form.set(k, v);
  form.set('file', new Blob([new Uint8Array(file)]), fileName);
  return fetch(`${url}/v1/adapters`, { method: 'POST', body: form });
};

/** A body sent in chunks (Transfer-Encoding: chunked, no Content-Length). */
const chunked = (data: Buffer) =>
  new ReadableStream({
    start(controller) {
      for (let i = 0; i < data.length; i += 256 * 1024) controller.enqueue(new Uint8Array(data.subarray(i, i + 256 * 1024)));
      controller.close();
    },
  });

/** Sends the head and part of a body on a raw socket, then goes away. */
async function abortMidUpload(head: string, part: Buffer): Promise<void> {
  const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(head);
  socket.write(part);
  // long enough for the server to have started staging the upload
  await new Promise((r) => setTimeout(r, 500));
  socket.destroy();
}

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'lf-hostile-'));
  dataDir = path.join(work, 'data');
  const adapter = await writeTestAdapter(path.join(work, 'adapter'), { hidden: 64, kv: 32, layers: 2, rank: 4 }, 7);
  config = await readFile(path.join(adapter, 'adapter_config.json'));
  weights = await readFile(path.join(adapter, 'adapter_model.safetensors'));
  const port = await freePort();
  await writeFile(path.join(work, 'config.yaml'), `inference:\n  enabled: false\nserver:\n  uploadLimitBytes: ${LIMIT}\n  rateLimitPerMinute: 100000\n`);
  server = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'src/cli/main.ts'), 'serve', '--port', String(port)], {
    cwd: repo,
    env: {
      ...process.env,
      LORAFORGE_CONFIG: path.join(work, 'config.yaml'),
      LORAFORGE_DATA_DIR: dataDir,
      REDIS_URL: TEST_REDIS_URL,
      LORAFORGE_REDIS_PREFIX: prefix,
      LORAFORGE_LOG_LEVEL: 'error',
      LORAFORGE_LOG_FORMAT: 'json',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  server.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (server.exitCode !== null) throw new Error(`serve exited: ${stderr}`);
    if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) break;
    if (i > 600) throw new Error('serve did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}, 120_000);

afterAll(async () => {
  server?.kill('SIGTERM');
  if (server && server.exitCode === null) await new Promise((r) => server.once('exit', r));
  const redis = testRedis();
  await deletePrefix(redis, prefix);
  await redis.quit();
  await rm(work, { recursive: true, force: true });
});

describe('hostile uploads against one API process', () => {
  it('archive bombs: content past the upload limit (413), or past 100x the archive (422), in a body or a part', async () => {
    // 1 MiB of noise and 39 MiB of zeros: about 40x, so the upload limit (32 MiB) is what stops it
    const sized = gzipSync(tarOf(tarEntry('adapter_config.json', config), tarEntry('adapter_model.safetensors', Buffer.concat([randomBytes(MiB), Buffer.alloc(39 * MiB)]))));
    await expectRefused(await postRaw(sized, 'application/x-tar'), [413], /larger than the upload limit/);
    await expectRefused(await postForm(sized, 'adapter.tar.gz'), [413], /larger than the upload limit/);
    // 64 MiB of zeros (64 KiB gzipped): the ratio stops it long before the limit
    const zeros = gzipSync(tarOf(tarEntry('adapter_config.json', config), tarEntry('adapter_model.safetensors', Buffer.alloc(64 * MiB))));
    await expectRefused(await postForm(zeros, 'bomb.tar.gz'), [422], /more than 100 times .* archive bomb/);
    await expectRefused(await postRaw(zeros, 'application/gzip'), [422], /archive bomb/);
    // the same in a zip, and zeros in a file the server skips (a tar must still read them)
    const zipBomb = await zipOf([
      { name: 'adapter_config.json', data: config },
      { name: 'adapter_model.safetensors', data: Buffer.alloc(64 * MiB) },
    ]);
    await expectRefused(await postRaw(zipBomb, 'application/zip'), [422], /archive bomb/);
    const skipped = gzipSync(tarOf(tarEntry('padding.bin', Buffer.alloc(40 * MiB)), ...adapterEntries('')));
    await expectRefused(await postRaw(skipped, 'application/octet-stream'), [422], /archive bomb/);
    // a valid tar.gz, then a second gzip member of zeros past the tar's end: every byte read counts
    const trailing = Buffer.concat([gzipSync(tarOf(...adapterEntries())), gzipSync(Buffer.alloc(64 * MiB))]);
    await expectRefused(await postRaw(trailing, 'application/gzip'), [422], /archive bomb/);
  }, 120_000);

  it('bodies past the limit: declared, chunked, and a multipart part', async () => {
    const noise = randomBytes(LIMIT + MiB);
    await expectRefused(await postRaw(noise, 'application/zip'), [413], /larger than the limit/);
    await expectRefused(await postRaw(chunked(noise), 'application/zip'), [413], /larger than the limit/);
    await expectRefused(await postRaw(chunked(noise), undefined), [413], /larger than the limit/);
    await expectRefused(await postForm(noise, 'adapter_model.safetensors'), [413], /larger than the limit/);
  }, 120_000);

  it('entries: too many, paths out of the archive, links, duplicates, missing files', async () => {
    const many = Array.from({ length: 1001 }, (_, i) => tarEntry(`junk/${i}`, ''));
    await expectRefused(await postRaw(gzipSync(tarOf(...many, ...adapterEntries())), 'application/gzip'), [422], /more than 1000 entries/);
    const manyZip = await zipOf([...Array.from({ length: 1001 }, (_, i) => ({ name: `junk/${i}`, data: Buffer.alloc(0) })), { name: 'adapter_config.json', data: config }]);
    await expectRefused(await postRaw(manyZip, 'application/zip'), [422], /more than 1000 entries/);

    for (const escape of ['../adapter_config.json', '../../etc/adapter_model.safetensors', '/etc/adapter_config.json', 'a/../../x']) {
      await expectRefused(await postRaw(tarOf(tarEntry(escape, config), ...adapterEntries()), 'application/x-tar'), [422], /leads outside the archive/);
    }
    // yazl refuses to write "..": write the same length and patch the name in place
    const dotted = await zipOf([{ name: 'aa/aa/adapter_config.json', data: config }, { name: 'adapter_model.safetensors', data: weights }]);
    const escaping = Buffer.from(dotted.toString('latin1').replaceAll('aa/aa/adapter_config', '../../adapter_config'), 'latin1');
    await expectRefused(await postRaw(escaping, 'application/zip'), [422], /\.\.\/\.\.\/adapter_config/);

    const symlink = tarOf(tarEntry('adapter_config.json', config), tarEntry('adapter_model.safetensors', '', { type: '2', link: '/dev/zero' }));
    await expectRefused(await postRaw(symlink, 'application/x-tar'), [422], /symbolic link, not a file/);
    const hardlink = tarOf(tarEntry('adapter_config.json', config), tarEntry('adapter_model.safetensors', '', { type: '1', link: 'adapter_config.json' }));
    await expectRefused(await postRaw(hardlink, 'application/x-tar'), [422], /hard link, not a file/);
    const zipLink = await zipOf([{ name: 'adapter_config.json', data: config }, { name: 'adapter_model.safetensors', data: Buffer.from('/etc/passwd'), mode: 0o120777 }]);
    await expectRefused(await postRaw(zipLink, 'application/zip'), [422], /symbolic link, not a file/);
    const device = tarOf(tarEntry('adapter_config.json', config), tarEntry('adapter_model.safetensors', '', { type: '3' }));
    await expectRefused(await postRaw(device, 'application/x-tar'), [422], /not a file/);

    await expectRefused(await postRaw(tarOf(...adapterEntries(''), tarEntry('again/adapter_config.json', config)), 'application/x-tar'), [422], /more than once/);
    await expectRefused(await postRaw(tarOf(tarEntry('a/b/adapter_config.json', config), tarEntry('a/b/adapter_model.safetensors', weights)), 'application/x-tar'), [422], /missing/);
  }, 120_000);

  it('lying headers, truncations and garbage', async () => {
    const good = await zipOf([{ name: 'adapter_config.json', data: config }, { name: 'adapter_model.safetensors', data: weights }]);
    // the central directory says 10 bytes: the 11th written stops it
    await expectRefused(await postRaw(lieInCentralDirectory(good, 'adapter_model.safetensors', 10), 'application/zip'), [422], /not readable/);
    // it says 4 GiB: refused before a byte is written (by the ratio here, as the archive is small)
    await expectRefused(await postRaw(lieInCentralDirectory(good, 'adapter_model.safetensors', 0xfffffff0), 'application/zip'), [413, 422], /archive bomb|upload limit/);
    // a tar header that claims more bytes than follow
    const short = tarOf(tarEntry('adapter_config.json', config), tarEntry('adapter_model.safetensors', weights, { size: weights.length * 4 }));
    await expectRefused(await postRaw(short, 'application/x-tar'), [422]);

    const tgz = gzipSync(tarOf(...adapterEntries()));
    for (const cut of [10, tgz.length >> 1, tgz.length - 9]) await expectRefused(await postRaw(tgz.subarray(0, cut), 'application/gzip'), [422]);
    for (const cut of [30, good.length >> 1, good.length - 10]) await expectRefused(await postRaw(good.subarray(0, cut), 'application/zip'), [422]);
    const flipped = Buffer.from(tgz);
    flipped[flipped.length >> 1] ^= 0xff;
    await expectRefused(await postRaw(flipped, 'application/gzip'), [422]);

    await expectRefused(await postRaw(randomBytes(4096), 'application/zip'), [422], /not a zip, tar or tar.gz archive/);
    await expectRefused(await postRaw(gzipSync(randomBytes(4096)), 'application/gzip'), [422]);
    await expectRefused(await postRaw(Buffer.alloc(0), 'application/zip'), [422], /empty/);
    await expectRefused(await postForm(Buffer.from('not an archive'), 'model.bin'), [422], /model.bin: not a zip/);
    await expectRefused(await postRaw(good, 'application/json'), [400], /malformed JSON/);
    const badForm = await fetch(`${url}/v1/adapters`, { method: 'POST', headers: { 'content-type': 'multipart/form-data' }, body: 'x' });
    await expectRefused(badForm, [400], /multipart/);
  }, 120_000);

  it('names echoed in messages are cut: a 20,000-character entry name, a 5,000-character file name', async () => {
    const longName = `${'n'.repeat(20_000)}/adapter_config.json/../../x`;
    const text = await expectRefused(await postRaw(tarOf(paxPath(longName), tarEntry('ignored', config), ...adapterEntries()), 'application/x-tar'), [422], /…/);
    expect(text.length).toBeLessThan(400);
    // (busboy refuses a part header much longer, in one line of its own)
    const res = await postForm(Buffer.from('x'), `${'f'.repeat(5_000)}.bin`);
    expect((await expectRefused(res, [422], /…/)).length).toBeLessThan(400);
    const huge = await postForm(Buffer.from('x'), `${'f'.repeat(20_000)}.bin`);
    await expectRefused(huge, [400], /bad multipart request/);
  }, 60_000);

  it('clients that go away mid-upload leave no staging behind', async () => {
    const host = `Host: ${new URL(url).host}\r\n`;
    await abortMidUpload(`POST /v1/adapters?name=gone HTTP/1.1\r\n${host}Content-Type: application/zip\r\nContent-Length: ${8 * MiB}\r\n\r\n`, randomBytes(MiB));
    await expectUnharmed();
    await abortMidUpload(`POST /v1/adapters?name=gone HTTP/1.1\r\n${host}Content-Type: application/gzip\r\nTransfer-Encoding: chunked\r\n\r\n`, Buffer.concat([Buffer.from(`${MiB.toString(16)}\r\n`), randomBytes(MiB), Buffer.from('\r\n')]));
    await expectUnharmed();
    const boundary = 'lfgone';
    const partHead = `--${boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\ngone\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n`;
    await abortMidUpload(
      `POST /v1/adapters HTTP/1.1\r\n${host}Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${8 * MiB}\r\n\r\n${partHead}`,
      randomBytes(MiB),
    );
    await expectUnharmed();
  }, 60_000);

  it('after all that, valid archives register whatever their declared type says', async () => {
    const tgz = gzipSync(tarOf(...adapterEntries()));
    const zip = await zipOf([{ name: 'dir/adapter_config.json', data: config }, { name: 'dir/adapter_model.safetensors', data: weights }, { name: 'dir/README.md', data: Buffer.from('hi') }]);
    const cases: Array<[string, Buffer, string | undefined]> = [
      ['gzip-typed', tgz, 'application/gzip'],
      ['tar-typed-zip', zip, 'application/x-tar'],
      ['untyped-tar', tarOf(...adapterEntries('')), undefined],
      ['octet-zip', zip, 'application/octet-stream'],
    ];
    for (const [name, body, type] of cases) {
      const res = await postRaw(body, type, `name=${name}`);
      expect(res.status, await res.clone().text()).toBe(201);
    }
    expect((await postForm(tgz, 'adapter.tgz', { name: 'form-tgz' })).status).toBe(201);
    await expectUnharmed(['gzip-typed', 'tar-typed-zip', 'untyped-tar', 'octet-zip', 'form-tgz']);
  }, 60_000);
});
