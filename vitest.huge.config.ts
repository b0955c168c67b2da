import { defineConfig } from 'vitest/config';

// `npm run test:huge`: messages over 2 GiB, one file at a time (each rank holds ~6 GiB).
export default defineConfig({
  test: {
    include: ['test/huge/**/*.test.ts'],
    testTimeout: 1_300_000,
    maxWorkers: 1,
    fileParallelism: false,
  },
});
