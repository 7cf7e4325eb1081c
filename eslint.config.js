// Type-aware linting: the rules that catch real bugs in async I/O code
// (floating promises, misused promises) need the type checker.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// `import { z }` pulls zod's whole namespace object (every locale, JSON-schema
// tooling) into the agent bundle: 444 KB instead of ~80 KB (docs/benchmarks.md).
const ZOD_NAMED_Z = {
  selector: "ImportDeclaration[source.value=/^zod(\\/mini)?$/] > ImportSpecifier[imported.name='z']",
  message: "use `import * as z from 'zod/mini'` (or 'zod' on the fleet side): the named `z` defeats tree shaking",
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'release/**', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // node:test's test()/describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
      'no-restricted-syntax': ['error', ZOD_NAMED_Z],
    },
  },
  {
    // What the agent bundle is built from: zod/mini's schema objects weigh about
    // two thirds of classic zod's, and one classic import would bring its runtime
    // back into the bundle. The fleet side (provisioning/) may use either.
    files: ['agent/**/*.ts', 'protocol/**/*.ts', 'common/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [{ name: 'zod', message: "the agent's schemas use `import * as z from 'zod/mini'`" }] }],
    },
  },
  {
    // One home for the contract: what the fleet side shares with the agent lives in
    // protocol/ (what both must agree on) or common/ (helpers both use), never in agent/.
    files: ['provisioning/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '(^|/)agent/', message: 'provisioning/ imports nothing from agent/: move what both sides need to protocol/ or common/' }] }],
    },
  },
  {
    // node:test's test() returns a promise the runner itself awaits.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': 'off',
      // A failing `assert.ok(x)` without a message makes node re-read the source to
      // write one; under tsx that can hang the file for minutes and the timeout then
      // names no assertion (nodejs/node#52677). (The rule's list replaces the one above.)
      'no-restricted-syntax': ['error', ZOD_NAMED_Z, {
        selector: "CallExpression[arguments.length=1]:matches([callee.name='assert'], [callee.object.name='assert'][callee.property.name='ok'])",
        message: 'give assert / assert.ok a message: without one a failure can hang the test file under tsx (nodejs/node#52677)',
      }],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', URL: 'readonly', Buffer: 'readonly' } },
  },
);
