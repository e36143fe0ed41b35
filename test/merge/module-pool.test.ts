import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { portable } from '../../src/merge/module-pool.js';

/** What a thread receives for `x`: a message clones the whole buffer behind a view. */
function sent(x: Float32Array): Float32Array {
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(x);
  const got = receiveMessageOnPort(port2)!.message as Float32Array;
  port1.close();
  return got;
}

describe('module pool messages', () => {
  it('send a tensor read as a view of its whole adapter as a copy of itself alone', () => {
    const adapterFile = Float32Array.from({ length: 1 << 16 }, (_, i) => i);
    const tensor = adapterFile.subarray(1000, 1064);
    expect(sent(tensor).buffer.byteLength).toBe(adapterFile.byteLength); // why: the view would carry 256 KiB
    const travelled = sent(portable(tensor));
    expect(travelled.buffer.byteLength).toBe(64 * 4);
    expect(travelled).toEqual(tensor);
    const own = Float32Array.of(1, 2, 3);
    expect(portable(own)).toBe(own); // an array owning its buffer is sent as it is
  });
});
