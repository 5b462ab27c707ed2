// ESLint: typescript-eslint's strict type-checked rules, plus the dependency direction between folders
// (core <- planner, shards <- signaling, client <- e2e). Where a rule's option differs from the preset,
// the comment says why.
import tseslint from 'typescript-eslint';

/** `no-restricted-imports` patterns that keep a folder from importing the folders above it. */
function mayNotImport(...folders) {
  return {
    'no-restricted-imports': [
      'error',
      {
        patterns: folders.map((folder) => ({
          group: [`**/${folder}/*`, `**/${folder}/**`],
          message: `Dependencies flow core <- planner, shards <- signaling, client <- e2e: this folder may not import ${folder}/.`,
        })),
      },
    ],
  };
}

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'build/', '.tandem/', 'e2e/artifacts/', '**/*.mjs', 'eslint.config.js'] },
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Numbers and booleans in messages are what error texts are made of.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      // Indexed reads after an explicit bounds check use `!` on purpose (the tsconfig does not turn on
      // noUncheckedIndexedAccess, so the assertion documents the check instead).
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      // A leading underscore marks a parameter kept for a uniform signature (e.g. every unit cost takes t).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  { files: ['core/**/*.ts'], rules: mayNotImport('planner', 'shards', 'signaling', 'client', 'e2e') },
  { files: ['planner/**/*.ts'], rules: mayNotImport('shards', 'signaling', 'client', 'e2e') },
  { files: ['shards/**/*.ts'], ignores: ['**/*.test.ts'], rules: mayNotImport('signaling', 'client', 'e2e') },
  { files: ['signaling/**/*.ts'], ignores: ['**/*.test.ts'], rules: mayNotImport('client', 'e2e') },
  { files: ['client/**/*.ts'], ignores: ['**/*.test.ts'], rules: mayNotImport('signaling', 'e2e') },
);
