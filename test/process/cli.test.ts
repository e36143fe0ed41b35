// The CLI against a running service: the real `loraforge` process (from sources, through tsx) talking to the API.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { writeTestAdapter } from '../helpers/adapters.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let work: string;

const cli = (...args: string[]) => runCli(args, { server: svc.url });

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'lf-cli-'));
  await writeTestAdapter(path.join(work, 'code'), { hidden: 32, kv: 16, layers: 2, rank: 4 }, 31);
  await writeTestAdapter(path.join(work, 'linux'), { hidden: 32, kv: 16, layers: 2, rank: 4 }, 32);
  svc = await startTestService({ name: 'cli' });
});

afterAll(async () => {
  await svc?.close();
  await rm(work, { recursive: true, force: true });
});

describe('loraforge adapters / merge --server', () => {
  it('registers, lists, merges on the server, and removes', async () => {
    expect((await cli('adapters', 'register', path.join(work, 'code'), '--name', 'code', '--category', 'code')).stdout).toMatch(/^created: code \(rank 4/);
    expect((await cli('adapters', 'register', path.join(work, 'linux'), '--name', 'linux-commands')).code).toBe(0);
    const list = await cli('adapters', 'list');
    expect(list.stdout).toMatch(/^NAME\s+BASE MODEL/);
    expect(list.stdout).toMatch(/linux-commands\s+test\/llama-tiny\s+4/);

    const merged = await cli('merge', '--method', 'linear', '--weights', '0.5,0.5', 'code', 'linux-commands', '--name', 'code-linux', '--json');
    expect(merged.code).toBe(0);
    expect(JSON.parse(merged.stdout)).toMatchObject({ state: 'completed', result: { name: 'code-linux' } });
    expect((await svc.registry.get('code-linux')).inputs?.map((i) => i.name)).toEqual(['code', 'linux-commands']);
    // what a person reads: the facts, the recipe and what the merge kept
    const show = (await cli('adapters', 'show', 'code-linux')).stdout;
    expect(show).toMatch(/^name +code-linux$/m);
    expect(show).toMatch(/^base model +test\/llama-tiny$/m);
    expect(show).toMatch(/^merge +linear of code × 0\.5, linux-commands × 0\.5$/m);
    expect(show).toMatch(/^error vs exact sum +\d+\.\d\d%$/m);

    // without --weights, linear takes 1/n each: the recipe above, so the same merge comes back
    const same = await cli('merges', 'create', 'code', 'linux-commands', '--method', 'linear', '--json');
    expect(JSON.parse(same.stdout)).toMatchObject({ name: 'code-linux', deduplicated: true, adapters: [{ weight: 0.5 }, { weight: 0.5 }] });

    const refused = await cli('adapters', 'rm', 'code');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^loraforge: "code" is an input of the registered merge code-linux/);
    expect((await cli('adapters', 'rm', 'code-linux')).stdout).toBe('removed code-linux\n');
    expect((await cli('adapters', 'rm', 'code')).code).toBe(0);

    const unknown = await cli('merges', 'create', 'nope', '--method', 'linear');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown adapter "nope"/);
  }, 240_000);
});
