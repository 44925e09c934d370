import { readFileSync } from 'node:fs';
import { defineConfig, type Options } from 'tsup';

const library: Options = {
  entry: {
    index: 'src/index.ts',
    'testing/index': 'src/testing/index.ts',
    'sqlite/index': 'src/sqlite/index.ts',
    'postgres/index': 'src/postgres/index.ts',
    'opentelemetry/index': 'src/opentelemetry/index.ts',
    'rabbitmq/index': 'src/rabbitmq/index.ts',
    'nats/index': 'src/nats/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: true,
  treeshake: true,
  external: ['better-sqlite3', 'pg', 'vitest', 'fast-check', '@opentelemetry/api', 'amqplib', /^@nats-io\//],
};

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };

export default defineConfig([
  library,
  // The `eventfold` command (package.json `bin`): ESM only, with a shebang. Its adapters are
  // imported lazily, so a missing driver (better-sqlite3, pg) is reported only when needed.
  {
    entry: { cli: 'src/cli/bin.ts' },
    outDir: 'dist/bin',
    format: ['esm'],
    dts: false,
    sourcemap: true,
    clean: true,
    target: 'node20',
    splitting: true,
    treeshake: true,
    banner: { js: '#!/usr/bin/env node' },
    define: { __EVENTFOLD_VERSION__: JSON.stringify(version) },
    external: library.external ?? [],
  },
]);
