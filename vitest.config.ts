import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string): string => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

export default defineConfig({
  resolve: {
    // The examples import the package by name, as an application would; point it at the source.
    alias: [
      { find: /^eventfold\/(testing|sqlite|postgres|nats)$/, replacement: src('$1/index.ts') },
      { find: /^eventfold\/opentelemetry$/, replacement: src('opentelemetry/index.ts') },
      { find: /^eventfold\/rabbitmq$/, replacement: src('rabbitmq/index.ts') },
      { find: /^eventfold$/, replacement: src('index.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ['test/support/global-setup.ts', 'test/support/nats-global-setup.ts'],
  },
});
