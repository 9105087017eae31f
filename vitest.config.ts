import { defineConfig } from 'vitest/config';

/** Pure logic: no Redis, no build of dist/, no child processes. */
const UNIT = ['test/unit/**/*.test.ts', 'test/config/**/*.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real processes (redis-server, workers, the claude CLI) on a two-core machine.
    maxWorkers: 2,
    pool: 'forks',
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text-summary'],
      // A figure even when a timing-sensitive test failed on a loaded machine.
      reportOnFailure: true,
    },
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: UNIT },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: UNIT,
          globalSetup: ['test/support/global-setup.ts'],
        },
      },
    ],
  },
});
