// ESLint flat config. Besides the usual TypeScript checks it enforces the layering of
// docs/ARCHITECTURE.md: a folder under src/ may import only its own layer and the layers below it,
// and only src/playwright/ may import Playwright.
import js from '@eslint/js';
import simpleImportSort from 'eslint-plugin-simple-import-sort';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Layers from the bottom up; each may import the ones before it. */
// share: the reverse SFTP share; power: power drivers; lease: device leases and their stores;
// cli: the labwright command (it must not import Playwright either).
const layers = ['util', 'config', 'transport', 'exec', 'transfer', 'session', 'share', 'power', 'lease', 'host', 'playwright', 'cli'];

const playwrightImports = [
  { name: '@playwright/test', message: 'Only src/playwright/ may import Playwright (see docs/ARCHITECTURE.md).' },
  { name: 'playwright', message: 'Only src/playwright/ may import Playwright (see docs/ARCHITECTURE.md).' },
];

/** One config block per layer forbidding imports of every layer above it. */
const layerRules = layers.map((layer, index) => {
  const above = layers.slice(index + 1);
  const patterns = [{ regex: '^labwright(/|$)', message: 'Inside src/ import modules relatively, never through the package name.' }];
  if (above.length > 0) {
    patterns.push({
      regex: `(^|/)(${above.join('|')})(/|$)`,
      message: `src/${layer}/ must not import from higher layers (${above.join(', ')}); see docs/ARCHITECTURE.md.`,
    });
  }
  return {
    files: [`src/${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', { paths: layer === 'playwright' ? [] : playwrightImports, patterns }],
    },
  };
});

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'test-results/', 'playwright-report/', '.cache/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    // Import order is checked (and fixed by `npm run format`); layout is Prettier's (.prettierrc.json).
    plugins: { 'simple-import-sort': simpleImportSort },
    rules: {
      'simple-import-sort/imports': 'error',
      'simple-import-sort/exports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-control-regex': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/playwright/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: playwrightImports }],
    },
  },
  ...layerRules,
);
