// One lint config for the whole tree. The import boundaries are the point of
// it: core/ is the engine and must stay loadable from any face, so it never
// reaches into electron/, cli/ or renderer/; the renderer imports only the
// two parts of core/api made for it (contract/ and browser/), which load no
// Node module; and inside core/ each folder imports only the folders below
// it (eslint-rules/core-layers.js, the layer table, in which core/api's
// three parts are layers too).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import svelte from 'eslint-plugin-svelte';
import { builtinModules } from 'node:module';
import coreLayers from './eslint-rules/core-layers.js';

const facesOutsideCore = ['**/electron/**', '**/cli/**', '**/renderer/**'];

/** core/ stays loadable from any face: no face, no Electron. */
const corePatterns = [
  {
    group: facesOutsideCore,
    message: 'core/ is the engine: it must not import electron/, cli/ or renderer/.',
  },
  { group: ['electron'], message: 'core/ must run under plain Node, without Electron.' },
];

/** Node's modules, by either name (`fs`, `node:fs`): none in a browser page. */
const nodeBuiltins = (who) => ({
  paths: builtinModules.map((name) => ({
    name,
    message: `${who} runs in the browser page: no Node modules.`,
  })),
  patterns: [{ regex: '^node:', message: `${who} runs in the browser page: no Node modules.` }],
});
const pageNodeBuiltins = nodeBuiltins('core/api/contract and core/api/browser');
const rendererNodeBuiltins = nodeBuiltins('renderer/');

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
      'no-restricted-imports': ['error', { patterns: corePatterns }],
    },
  },
  {
    // What the renderer loads from core/api (contract/ and browser/; which of
    // core/api's parts may import which is the layer table's job).
    files: ['core/api/contract/**/*.ts', 'core/api/browser/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: pageNodeBuiltins.paths,
          patterns: [...corePatterns, ...pageNodeBuiltins.patterns],
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
          paths: rendererNodeBuiltins.paths,
          patterns: [
            {
              regex: '^(\\.\\./)+core/(?!api/(contract|browser)/)',
              message:
                'renderer/ imports only core/api/contract and core/api/browser, never the server or the engine.',
            },
            {
              group: ['**/electron/**', '**/cli/**'],
              message: 'renderer/ speaks only core/api/contract and core/api/browser.',
            },
            ...rendererNodeBuiltins.patterns,
          ],
        },
      ],
    },
  },
);
