#!/usr/bin/env -S GLIBC_TUNABLES=${GLIBC_TUNABLES}:glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432 node
// The installed entry point runs the compiled CLI, bundled (built by `npm run build`, which `npm ci` runs through
// `prepare`; scripts/bundle.mjs says why a bundle).
// The shebang tunes glibc's malloc for large buffers (adapters, model weights, KV caches): transparent huge pages
// (faulted in 2 MiB at a time, not 4 KiB), and blocks under 32 MiB served from the heap and reused (glibc's own
// upper bound for its adaptive mmap threshold) rather than mapped and faulted in afresh for each. An 8B-shaped
// merge took 2.8 s without, 1.9 s with; decode ran 5-15% faster (docs/BENCHMARKS.md). glibc ignores the settings
// where THP is off, and other C libraries ignore the variable; `node bin/loraforge.js` runs without them.
import { existsSync } from 'node:fs';

const main = new URL('../dist/bundle/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('loraforge: dist/ is missing; run `npm run build` (or `npm ci`, which builds) first');
  process.exit(2);
}
await import(main.href);
