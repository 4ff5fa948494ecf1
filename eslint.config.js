// One lint config for the whole tree. The import boundaries are the point of
// it: core/ is the engine and must stay loadable from any face, so it never
// reaches into electron/, cli/ or renderer/; the renderer speaks only the
// typed contract in core/api; and inside core/ each folder imports only the
// folders below it (eslint-rules/core-layers.js, the layer table).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import svelte from 'eslint-plugin-svelte';
import coreLayers from './eslint-rules/core-layers.js';

const facesOutsideCore = ['**/electron/**', '**/cli/**', '**/renderer/**'];

export default tseslint.config(
  { ignores: ['dist/**', 'out/**', 'node_modules/**', 'test-results/**', 'renderer/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...svelte.configs.recommended,
  {
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: {
      parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.svelte'] },
    },
  },
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['core/**/*.ts'],
    plugins: { vmchan: coreLayers },
    rules: {
      'vmchan/core-layers': 'error',
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: facesOutsideCore,
              message: 'core/ is the engine: it must not import electron/, cli/ or renderer/.',
            },
            { group: ['electron'], message: 'core/ must run under plain Node, without Electron.' },
          ],
        },
      ],
    },
  },
  {
    files: ['renderer/**/*.ts', 'renderer/**/*.js', 'renderer/**/*.svelte'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(\\.\\./)+core/(?!api(/|$))',
              message: 'renderer/ imports only core/api (the typed contract), never the engine.',
            },
            { group: ['**/electron/**', '**/cli/**'], message: 'renderer/ speaks only core/api.' },
            { regex: '^node:', message: 'renderer/ runs in a sandboxed browser: no Node modules.' },
          ],
        },
      ],
    },
  },
);
