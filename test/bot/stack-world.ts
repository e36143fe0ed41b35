// A bot in the fake Discord in front of the whole stack (test/eval/stack.ts: the demo model served by the real engine,
// an expert registered per skill), for the bot tests that need models answering: evals, sweeps, routers.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { demoWithExperts, startEvalStack, type EvalStack, type EvalStackOptions } from '../eval/stack.js';
import { createWorld, type World } from './world.js';

export interface StackWorld {
  stack: EvalStack;
  world: World;
  /** stops the bot and the stack and removes their files */
  close(): Promise<void>;
}

export async function startStackWorld(name: string, options: Omit<EvalStackOptions, 'name'> = {}): Promise<StackWorld> {
  const root = await mkdtemp(path.join(os.tmpdir(), `lf-bot-${name}-`));
  let stack: EvalStack | undefined;
  let world: World | undefined;
  const close = async () => {
    await world?.close();
    await stack?.close();
    await rm(root, { recursive: true, force: true });
  };
  try {
    stack = await startEvalStack(await demoWithExperts(root), { ...options, name: `bot-${name}` });
    world = await createWorld(name, stack.url, { editIntervalMs: 500 });
    await world.bot.context.adapters.refresh();
    return { stack, world, close };
  } catch (err) {
    await close();
    throw err;
  }
}
