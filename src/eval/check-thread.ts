// Worker thread entry of CheckThread (checks.ts): answers each check request, one at a time.
import { parentPort } from 'node:worker_threads';
import { passesChecks, type CheckReply, type CheckRequest } from './checks.js';

const port = parentPort!;
port.on('message', ({ id, answer, checks }: CheckRequest) => port.postMessage({ id, pass: passesChecks(answer, checks) } satisfies CheckReply));
