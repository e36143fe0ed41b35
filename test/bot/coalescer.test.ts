import { describe, expect, it } from 'vitest';
import { EditCoalescer } from '../../src/bot/coalescer.js';

/** A virtual clock: `sleep` moves time forward at once, `send` takes `latencyMs` of virtual time. */
function harness(latencyMs: number, fail?: (value: string) => Error | null) {
  let now = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const sent: { value: string; at: number }[] = [];
  const sleep = async (ms: number) => {
    now += ms;
  };
  const send = async (value: string) => {
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    sent.push({ value, at: now });
    await Promise.resolve();
    now += latencyMs;
    inFlight -= 1;
    const err = fail?.(value);
    if (err) throw err;
  };
  const coalescer = new EditCoalescer(send, { minIntervalMs: 1500, now: () => now, sleep });
  return { coalescer, sent, maxInFlight: () => maxInFlight, advance: (ms: number) => (now += ms) };
}

describe('EditCoalescer', () => {
  it('sends the first value at once, then only the latest, never closer than the interval', async () => {
    const h = harness(100);
    for (let k = 1; k <= 100; k++) h.coalescer.update(`v${k}`);
    await h.coalescer.finish('v100');
    expect(h.sent.map((s) => s.value)).toEqual(['v1', 'v100']);
    expect(h.sent[1]!.at - h.sent[0]!.at).toBe(1500);
  });

  it('keeps one edit in flight even when an edit is slow (a 429 being waited out)', async () => {
    const h = harness(4000);
    h.coalescer.update('a');
    await Promise.resolve();
    h.coalescer.update('b');
    h.coalescer.update('c');
    await h.coalescer.finish('d');
    expect(h.maxInFlight()).toBe(1);
    expect(h.sent.map((s) => s.value)).toEqual(['a', 'd']);
    // the second edit starts when the first is done (4 s), not at the 1.5 s interval
    expect(h.sent[1]!.at).toBe(4000);
  });

  it('always delivers the final value, and does not repeat a value already shown', async () => {
    const h = harness(10);
    h.coalescer.update('same');
    await h.coalescer.finish('same');
    expect(h.sent.map((s) => s.value)).toEqual(['same']);
    await h.coalescer.finish('final');
    expect(h.sent.map((s) => s.value)).toEqual(['same', 'final']);
    expect(h.coalescer.sends).toBe(2);
  });

  it('paces a long stream at the interval: a token every 50 ms for 15 s gives about 15/1.5 edits', async () => {
    // a manual clock: timers fire only as the test moves time forward
    let now = 0;
    const timers: { at: number; fire: () => void }[] = [];
    const sleep = (ms: number) => new Promise<void>((fire) => timers.push({ at: now + ms, fire }));
    const sent: number[] = [];
    const coalescer = new EditCoalescer(async () => {
      sent.push(now);
      await sleep(80);
    }, { minIntervalMs: 1500, now: () => now, sleep });
    const fireDue = async () => {
      const due = timers.filter((t) => t.at <= now);
      timers.splice(0, timers.length, ...timers.filter((t) => t.at > now));
      for (const t of due) t.fire();
      await new Promise((r) => setImmediate(r));
    };
    for (let k = 0; k < 300; k++) {
      coalescer.update(`t${k}`);
      now += 50;
      await fireDue();
    }
    const done = coalescer.finish('end');
    while (timers.length > 0) {
      now = Math.max(now, Math.min(...timers.map((t) => t.at)));
      await fireDue();
    }
    await done;
    const gaps = sent.slice(1).map((at, i) => at - sent[i]!);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(1500);
    expect(sent.length).toBeGreaterThanOrEqual(10);
    expect(sent.length).toBeLessThanOrEqual(12);
  });

  it('stops after a failed edit and reports it from finish', async () => {
    const h = harness(10, (v) => (v === 'b' ? new Error('Unknown Message') : null));
    await h.coalescer.finish('a');
    h.coalescer.update('b');
    await expect(h.coalescer.finish('b')).rejects.toThrow('Unknown Message');
    h.coalescer.update('d');
    expect(h.sent.map((s) => s.value)).toEqual(['a', 'b']);
  });
});
