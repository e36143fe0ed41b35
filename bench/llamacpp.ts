// Pure helpers of bench:vs-llamacpp (no process state), kept apart so that the tests can import them: reading
// llama.cpp's tools' output, the machine's busy time from /proc/stat, our 4-stream rate, and the decode bound.

/**
 * Busy CPU seconds of the whole machine from /proc/stat's `cpu` line: user, nice, system, irq, softirq and steal
 * (every one of the first eight states but idle and iowait). guest and guest_nice are left out: the kernel already
 * counts them in user and nice.
 */
export function busySecondsOf(procStat: string, hz = 100): number {
  const [label, ...values] = procStat.split('\n')[0]!.trim().split(/\s+/);
  if (label !== 'cpu') throw new Error(`not a /proc/stat cpu line: ${label}`);
  const n = values.slice(0, 8).map(Number);
  while (n.length < 8) n.push(0);
  return (n.reduce((a, b) => a + b, 0) - n[3]! - n[4]!) / hz;
}

/** llama-bench `-o json`: the mean tokens/s of its one test. */
export function llamaBenchRate(json: string): number {
  const rows = JSON.parse(json) as Array<{ avg_ts?: number }>;
  if (rows.length !== 1 || typeof rows[0]!.avg_ts !== 'number') throw new Error(`llama-bench: expected one test with avg_ts, got ${json.slice(0, 200)}`);
  return rows[0]!.avg_ts;
}

/** llama-batched-bench `--output-format jsonl`: aggregate generation tokens/s of the row with `pl` sequences. */
export function batchedBenchRate(jsonl: string, pl: number): number | null {
  const row = jsonl
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { pl: number; speed_tg: number })
    .find((r) => r.pl === pl);
  return row?.speed_tg ?? null;
}

/**
 * Aggregate tokens/s of concurrent streams from their token arrival times (ms): the tokens that arrived while every
 * stream was decoding (after the last stream's first token, up to the first stream's last), over that time.
 */
export function streamsRate(times: number[][]): number {
  const from = Math.max(...times.map((t) => t[0]!));
  const to = Math.min(...times.map((t) => t[t.length - 1]!));
  if (!(to > from)) throw new Error('the streams never decoded together');
  const inside = times.flat().filter((t) => t > from && t <= to).length;
  return inside / ((to - from) / 1000);
}

/** Decode tokens/s that reading `weightBytes` once per token at `readBytesPerSecond` allows. */
export const decodeBound = (weightBytes: number, readBytesPerSecond: number) => readBytesPerSecond / weightBytes;
