// One JSON text per value: keys sorted at every level, no whitespace. Content hashes (adapters, merge recipes)
// are taken over this form, so key order and formatting never change an identity.
import { configure } from 'safe-stable-stringify';

const stringify = configure({ deterministic: true, circularValue: TypeError, bigint: false });

export function canonicalJson(value: unknown): string {
  const text = stringify(value);
  if (text === undefined) throw new TypeError('value has no JSON form');
  return text;
}
