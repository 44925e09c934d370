import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'testing/index': 'src/testing/index.ts',
    'sqlite/index': 'src/sqlite/index.ts',
    'postgres/index': 'src/postgres/index.ts',
    'opentelemetry/index': 'src/opentelemetry/index.ts',
    'rabbitmq/index': 'src/rabbitmq/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: true,
  treeshake: true,
  external: ['better-sqlite3', 'pg', 'vitest', 'fast-check', '@opentelemetry/api', 'amqplib'],
});
