// The CLI starts fast because src/cli/main.ts reaches, through static imports, only commander and our own light
// modules: every heavy package (zod, ONNX Runtime, the server stack, discord.js) is imported inside the action that
// needs it. This walks the static import graph (type-only imports excluded, as the compiler drops them) and
// fails when a heavy package or module becomes reachable again.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { mergeCommand } from '../../src/cli/commands/merge.js';
import { buildProgram } from '../../src/cli/program.js';
import { MERGE_METHODS } from '../../src/merge/index.js';

const root = path.resolve(import.meta.dirname, '../..');

/** Runtime import specifiers of one file: `import type` and `export type` left out, `import()` not followed. */
function staticImports(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022);
  const out: string[] = [];
  for (const node of source.statements) {
    if (ts.isImportDeclaration(node) && !node.importClause?.isTypeOnly) out.push((node.moduleSpecifier as ts.StringLiteral).text);
    if (ts.isExportDeclaration(node) && !node.isTypeOnly && node.moduleSpecifier) out.push((node.moduleSpecifier as ts.StringLiteral).text);
  }
  return out;
}

/** Every file of ours and every package reached from `entry`. */
function reachable(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const spec of staticImports(file)) {
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      else if (!spec.startsWith('node:')) packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  };
  visit(entry);
  return { files, packages };
}

describe('CLI start-up imports', () => {
  it('reaches only commander and light modules of ours from src/cli/main.ts', () => {
    const { files, packages } = reachable(path.join(root, 'src/cli/main.ts'));
    expect([...packages]).toEqual(['commander']);
    const ours = [...files].map((f) => path.relative(root, f));
    for (const heavy of ['src/app.ts', 'src/config/index.ts', 'src/merge/index.ts', 'src/formats/peft.ts', 'src/util/log.ts', 'src/client/index.ts']) {
      expect(ours).not.toContain(heavy);
    }
  });

  it('the walk sees through re-exports: the merge engine reaches ONNX Runtime and zod', () => {
    const { packages } = reachable(path.join(root, 'src/merge/index.ts'));
    expect(packages).toContain('onnxruntime-node');
    expect(packages).toContain('zod');
  });

  it('`merge --help` names every merge method (its --method option checks them only when the command runs)', () => {
    const merge = buildProgram([mergeCommand]).commands.find((c) => c.name() === 'merge')!;
    let help = '';
    merge.configureOutput({ writeOut: (s) => (help += s) });
    merge.outputHelp();
    const methods = help.slice(help.indexOf('Methods'));
    for (const method of MERGE_METHODS) expect(methods).toMatch(new RegExp(`\\b${method}\\b`));
  });
});
