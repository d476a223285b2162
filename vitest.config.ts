import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Conformance tests spawn the CLI, which itself uses worker threads; two files at a time fit 2 cores.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
