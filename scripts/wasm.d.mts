// Types of scripts/wasm.mjs, for the test that checks the generated modules.
export function wasmModuleSource(watFile: string, text: string): Promise<string>;
export function watFiles(): string[];
export function generatedPath(watFile: string): string;
