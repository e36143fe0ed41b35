// Worker thread entry: the sha256 of each file in workerData.files, streamed (1 MiB reads), posted back as hex
// strings in order. mergeToDirectory hashes its inputs here so that the main thread can merge meanwhile.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

export interface HashThreadData {
  files: string[];
}

const { files } = workerData as HashThreadData;
const hashes: string[] = [];
for (const file of files) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  hashes.push(hash.digest('hex'));
}
parentPort!.postMessage(hashes);
