import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', 'bench/out/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      // `import { type A }` compiles to `import {} from …` under verbatimModuleSyntax: the module (ONNX Runtime,
      // say) is still loaded, which the CLI's lazy imports exist to avoid
      '@typescript-eslint/no-import-type-side-effects': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'smart'],
      // ONNX Runtime is loaded through src/util/onnxruntime.ts, which turns its telemetry off first
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { paths: [{ name: 'onnxruntime-node', message: 'import ort from src/util/onnxruntime.ts (its telemetry off)', allowTypeImports: true }] },
      ],
    },
  },
  {
    files: ['src/util/onnxruntime.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': 'off' },
  },
  {
    files: ['bin/**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
