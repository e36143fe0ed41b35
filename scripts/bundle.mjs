// Bundles the compiled CLI (dist/) into dist/bundle/, what bin/loraforge.js runs. Node loads an ES module file by
// file, and a command's start-up went mostly to loading ~320 small files (zod's 95, yaml's 72, ours): bundled, a
// local merge starts about 0.1 s sooner. Code splitting keeps each command's lazy imports lazy. Worker threads
// start from a module beside their caller (src/util/worker.ts), so every thread entry is an entry here, flat in
// one folder. Only pure-JS packages are bundled; the rest (native addons, packages that read their own files or
// start their own threads) load from node_modules as before.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

const BUNDLED = new Set(['zod', 'yaml', 'commander']);

/** Thread entries, named as src/util/worker.ts's siblingModule callers name them (test/cli/bundle.test.ts checks). */
const THREAD_ENTRIES = [
  'dist/eval/check-thread.js',
  'dist/inference/encode-thread.js',
  'dist/inference/engine/worker.js',
  'dist/merge/hash-thread.js',
  'dist/merge/module-thread.js',
  'dist/queue/merge-thread.js',
];

const packageOf = (spec) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);

rmSync('dist/bundle', { recursive: true, force: true }); // chunk names change with their contents
await build({
  entryPoints: ['dist/cli/main.js', ...THREAD_ENTRIES],
  outdir: 'dist/bundle', // two folders deep like dist/<area>/, so paths relative to a module (assets/, config/) hold
  entryNames: '[name]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  // the bundled CommonJS (commander) calls require(), which an ES module lacks
  banner: { js: "import { createRequire as __loraforgeRequire } from 'node:module'; const require = __loraforgeRequire(import.meta.url);" },
  logLevel: 'warning',
  plugins: [
    {
      name: 'external-packages',
      setup(b) {
        b.onResolve({ filter: /^[^./]/ }, (args) => (BUNDLED.has(packageOf(args.path)) ? undefined : { path: args.path, external: true }));
      },
    },
  ],
});
