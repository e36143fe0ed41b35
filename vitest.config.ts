import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // a private OS temp dir per run; the run fails if a test leaves anything in it
    globalSetup: ['test/global-setup.ts'],
    environment: 'node',
    // Tests that start servers, Redis clients or ONNX sessions need more than the default 5 s on a busy 2-core box.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    teardownTimeout: 10_000,
  },
});
