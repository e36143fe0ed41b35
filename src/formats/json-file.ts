// JSON files from other tools (configs, indexes): every failure names the file.
import { readFile } from 'node:fs/promises';
import { InvalidFileError, NotFoundError } from '../errors.js';

/** Reads a JSON file that must hold an object; every failure names the file. */
export async function readJsonObject(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${file}: no such file`);
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InvalidFileError(file, `not valid JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InvalidFileError(file, 'must hold a JSON object');
  }
  return json as Record<string, unknown>;
}
