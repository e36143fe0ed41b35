#!/usr/bin/env node
// The installed entry point runs the compiled CLI (built by `npm run build`, which `npm ci` runs through `prepare`).
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('loraforge: dist/ is missing; run `npm run build` (or `npm ci`, which builds) first');
  process.exit(2);
}
await import(main.href);
