// Skill suites: JSONL files of `{category, prompt, reference, checks?, id?}`, one item a line (docs/eval.md).
// Loading is strict: an unknown field (a typo such as "refrence"), an empty prompt or a regex that does not compile is
// refused with the file and line, and every bad line is reported at once so a suite can be fixed in one pass.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { InvalidFileError, InvalidInputError, NotFoundError } from '../errors.js';

/** The suites shipped with loraforge, one per skill of the demo adapters (`config/suites/<category>.jsonl`). */
export const BUILTIN_SUITES_DIR = fileURLToPath(new URL('../../config/suites', import.meta.url));

export const CategorySchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^\S(.*\S)?$/, 'no leading or trailing spaces')
  .meta({ description: 'skill category; matched against the registry `category` of the expert adapter' });

const RegexCheckSchema = z
  .object({
    regex: z.string().min(1).max(500),
    /** JavaScript RegExp flags: i (ignore case), m (multi-line), s (dot matches newline), u (unicode) */
    flags: z.string().regex(/^(?!.*(.).*\1)[imsu]*$/, 'flags are any of i, m, s, u, each once').optional(),
  })
  .strict();

export const CheckSchema = z
  .union([z.string().min(1), RegexCheckSchema])
  .meta({ description: 'a substring the answer must contain (case-sensitive), or {regex, flags?} it must match' });

export const SuiteItemSchema = z
  .object({
    /** unique within the suites of one run; default `<file name>:<line>` */
    id: z.string().min(1).max(128).optional(),
    category: CategorySchema,
    prompt: z.string().min(1),
    /** the expert's answer: scored by its mean negative log-likelihood given the prompt */
    reference: z.string().min(1),
    /** all must pass for the item's generated answer to pass */
    checks: z.array(CheckSchema).min(1).optional(),
  })
  .strict();

export type Check = z.infer<typeof CheckSchema>;
export type SuiteItemInput = z.infer<typeof SuiteItemSchema>;
export type SuiteItem = SuiteItemInput & { id: string };

/** Lines with errors reported per file before giving up. */
const MAX_REPORTED_ERRORS = 10;

function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`).join('; ');
}

function regexError(check: Check): string | null {
  if (typeof check === 'string') return null;
  try {
    new RegExp(check.regex, check.flags);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Parses validated items, without ids, from inline input (an API body): same rules as a file, errors name the index.
 */
export function validateItems(items: unknown[], where = 'items'): SuiteItem[] {
  const out: SuiteItem[] = [];
  const errors: string[] = [];
  items.forEach((raw, index) => {
    const parsed = SuiteItemSchema.safeParse(raw);
    if (!parsed.success) return void errors.push(`${where}[${index}]: ${describeIssues(parsed.error)}`);
    const bad = (parsed.data.checks ?? []).map(regexError).find((e) => e !== null);
    if (bad) return void errors.push(`${where}[${index}]: checks: ${bad}`);
    out.push({ ...parsed.data, id: parsed.data.id ?? `${where}[${index}]` });
  });
  if (errors.length > 0) throw new InvalidInputError(errors.slice(0, MAX_REPORTED_ERRORS).join('\n'), { errors });
  assertUniqueIds(out, where);
  return out;
}

/** Parses the text of one JSONL suite. `source` names it in errors and default ids. Blank lines are skipped. */
export function parseSuite(text: string, source: string): SuiteItem[] {
  const items: SuiteItem[] = [];
  const errors: string[] = [];
  const base = path.basename(source);
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const lineNo = i + 1;
    if (line.trim() === '') return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (err) {
      return void errors.push(`line ${lineNo}: not valid JSON (${(err as Error).message})`);
    }
    const parsed = SuiteItemSchema.safeParse(json);
    if (!parsed.success) return void errors.push(`line ${lineNo}: ${describeIssues(parsed.error)}`);
    const bad = (parsed.data.checks ?? []).map(regexError).find((e) => e !== null);
    if (bad) return void errors.push(`line ${lineNo}: checks: ${bad}`);
    items.push({ ...parsed.data, id: parsed.data.id ?? `${base}:${lineNo}` });
  });
  if (errors.length > 0) {
    const more = errors.length > MAX_REPORTED_ERRORS ? `\n(and ${errors.length - MAX_REPORTED_ERRORS} more lines)` : '';
    throw new InvalidFileError(source, `${errors.slice(0, MAX_REPORTED_ERRORS).join('\n')}${more}`, { errors });
  }
  if (items.length === 0) throw new InvalidFileError(source, 'the suite has no items (one JSON object per line)');
  return items;
}

function assertUniqueIds(items: SuiteItem[], where: string): void {
  const seen = new Set<string>();
  for (const item of items) {
    if (seen.has(item.id)) throw new InvalidInputError(`${where}: item id "${item.id}" is used twice; ids must be unique`);
    seen.add(item.id);
  }
}

export async function loadSuiteFile(file: string): Promise<SuiteItem[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`suite file ${file} does not exist`);
    throw err;
  }
  return parseSuite(text, file);
}

/** Names of the suites in a directory (its `*.jsonl` files, without the extension), sorted. */
export async function listSuites(dir: string = BUILTIN_SUITES_DIR): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => f.endsWith('.jsonl')).map((f) => f.slice(0, -'.jsonl'.length)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`suites directory ${dir} does not exist`);
    throw err;
  }
}

const SUITE_NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;

/**
 * Loads suites by name (a file `<name>.jsonl` in `dir`, the built-in suites by default) and returns all their items.
 * No names = every suite in `dir`. Ids must be unique across the suites.
 */
export async function loadSuites(names: readonly string[] = [], dir: string = BUILTIN_SUITES_DIR): Promise<SuiteItem[]> {
  const available = await listSuites(dir);
  const chosen = names.length > 0 ? [...new Set(names)] : available;
  if (chosen.length === 0) throw new NotFoundError(`no suites (*.jsonl) in ${dir}`);
  const items: SuiteItem[] = [];
  for (const name of chosen) {
    if (!SUITE_NAME_RE.test(name) || !available.includes(name)) {
      throw new NotFoundError(`no suite "${name}" in ${dir}; available: ${available.join(', ') || '(none)'}`);
    }
    items.push(...(await loadSuiteFile(path.join(dir, `${name}.jsonl`))));
  }
  assertUniqueIds(items, 'suites');
  return items;
}

/** Loads a suite from a path: a JSONL file, or a directory of them. For the CLI, which may read local files. */
export async function loadSuitePath(p: string): Promise<SuiteItem[]> {
  let info;
  try {
    info = await stat(p);
  } catch {
    throw new NotFoundError(`suite path ${p} does not exist`);
  }
  return info.isDirectory() ? loadSuites([], p) : loadSuiteFile(p);
}

/** Items grouped by category, categories in first-seen order. */
export function byCategory<T extends { category: string }>(items: readonly T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const list = out.get(item.category);
    if (list) list.push(item);
    else out.set(item.category, [item]);
  }
  return out;
}
