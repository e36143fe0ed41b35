// Real adapters, tokenizers and checkpoints made by other people's tools live in ../shared/fixtures, outside the
// repository. Tests read them in place and skip, saying why, when the folder is absent (a bare clone).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const FIXTURES_DIR = process.env.LORAFORGE_FIXTURES ?? path.resolve(repoRoot, '../shared/fixtures');

export const haveFixtures = existsSync(FIXTURES_DIR);

export const fixturesSkipReason = `shared fixtures not found at ${FIXTURES_DIR} (set LORAFORGE_FIXTURES to point at them)`;

/** Absolute path of a fixture, e.g. fixture('peft/gpt2/sidmahurkar-gpt2-lora'). */
export function fixture(relative: string): string {
  return path.join(FIXTURES_DIR, relative);
}

if (!haveFixtures) console.warn(`[loraforge tests] skipping fixture tests: ${fixturesSkipReason}`);
