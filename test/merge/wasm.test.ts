import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generatedPath, wasmModuleSource, watFiles } from '../../scripts/wasm.mjs';

describe('WebAssembly kernels', () => {
  it('every generated module holds its .wat assembled as it is now (run `npm run wasm` after editing one)', async () => {
    const files = watFiles();
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) expect(readFileSync(generatedPath(file), 'utf8')).toBe(await wasmModuleSource(file, readFileSync(file, 'utf8')));
  });
});
