// Worker thread entry: the sha256 of each file in workerData.files (formats/file-hash.ts), posted back as hex
// strings in order. mergeToDirectory hashes its inputs here so that the main thread can merge meanwhile.
import { parentPort, workerData } from 'node:worker_threads';
import { sha256File } from '../formats/file-hash.js';

export interface HashThreadData {
  files: string[];
}

const { files } = workerData as HashThreadData;
const hashes: string[] = [];
for (const file of files) hashes.push(await sha256File(file));
parentPort!.postMessage(hashes);
