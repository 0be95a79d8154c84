/** Jest runs TypeScript as ESM (middy is ESM-only); type checking is `npm run lint`'s job. */
const tsJest = ['ts-jest', { useESM: true, diagnostics: false }];
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': tsJest },
  testEnvironment: 'node',
};

export default {
  ...common,
  globalSetup: './test/support/global-setup.mjs',
  globalTeardown: './test/support/global-teardown.mjs',
  testTimeout: 60_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    { ...common, displayName: 'policy', testMatch: ['<rootDir>/test/policy/**/*.test.ts'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.ts'] },
    { ...common, displayName: 'infra', testMatch: ['<rootDir>/test/infra/**/*.test.ts'] },
    // Child processes (`npx oc`, `npm start`): each boots Node and tsx on a shared machine.
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.test.ts'], testTimeout: 180_000 },
    // The web console in a real browser (Debian's chromium through playwright-core).
    { ...common, displayName: 'ui', testMatch: ['<rootDir>/test/ui/**/*.test.ts'], testTimeout: 120_000 },
  ],
};
