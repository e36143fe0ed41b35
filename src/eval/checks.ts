// Whether a generated answer passes an item's checks: a substring, or a user's regex. Regexes come from users (API
// bodies) and run on generated text, so each test runs in a vm context with a time limit (V8 interrupts the
// backtracking). An eval runs in the API's process: there a pattern that backtracks catastrophically would still
// hold the main thread for its whole time limit, once per item and model, so an eval's regexes run in a thread of
// their own (CheckThread, check-thread.ts).
import vm from 'node:vm';
import type { Worker } from 'node:worker_threads';
import { siblingModule, startWorker } from '../util/worker.js';
import type { Check } from './suite.js';

const REGEX_TIME_LIMIT_MS = 100;
const regexContext = vm.createContext({ answer: '', pattern: '', flags: '' });
const regexTest = new vm.Script('new RegExp(pattern, flags).test(answer)');

/** Whether an answer passes one check. A regex that runs past its time limit counts as failed. */
export function passesCheck(answer: string, check: Check): boolean {
  if (typeof check === 'string') return answer.includes(check);
  Object.assign(regexContext, { answer, pattern: check.regex, flags: check.flags ?? '' });
  try {
    return regexTest.runInContext(regexContext, { timeout: REGEX_TIME_LIMIT_MS }) === true;
  } catch {
    return false;
  }
}

/** Whether an answer passes every check of an item (true when it has none). */
export function passesChecks(answer: string, checks: readonly Check[] | undefined): boolean {
  return (checks ?? []).every((c) => passesCheck(answer, c));
}

/** Whether any of the checks is a regex (substring checks take microseconds wherever they run). */
export function hasRegex(checks: readonly Check[] | undefined): boolean {
  return (checks ?? []).some((c) => typeof c !== 'string');
}

export interface CheckRequest {
  id: number;
  answer: string;
  checks: readonly Check[];
}

export interface CheckReply {
  id: number;
  pass: boolean;
}

/** A thread that runs checks; started by an eval that has regex checks, closed when it ends. */
export class CheckThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve(pass: boolean): void; reject(err: Error): void }>();
  private nextId = 0;
  private failure: Error | null = null;

  constructor() {
    this.worker = startWorker(siblingModule(import.meta.url, 'check-thread'));
    this.worker.on('message', ({ id, pass }: CheckReply) => {
      this.pending.get(id)?.resolve(pass);
      this.pending.delete(id);
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`the answer-checking thread stopped (exit code ${code})`)));
  }

  /** passesChecks, run in the thread. */
  passes(answer: string, checks: readonly Check[]): Promise<boolean> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, answer, checks } satisfies CheckRequest);
    });
  }

  async close(): Promise<void> {
    this.failure ??= new Error('the answer-checking thread was closed');
    await this.worker.terminate();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }
}
