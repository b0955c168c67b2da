import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Messages over 2 GiB need ~12 GiB and minutes: `npm run test:huge` (vitest.huge.config.ts).
    exclude: ['test/huge/**', '**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Multi-process tests spawn real ranks; keep parallel files modest on a 2-core machine.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
