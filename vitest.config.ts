import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real processes (redis-server, workers, the claude CLI) on a two-core machine.
    maxWorkers: 2,
    pool: 'forks',
  },
});
