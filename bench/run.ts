/**
 * `npm run bench`: runs each bench script in its own node process, one after the other (so they do
 * not compete for the CPU or share a heap), and prints their output. Exits non-zero if one fails.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// core always runs; the others are written by other work streams and run when present.
const scripts = ['core', 'sqlite', 'postgres', 'postgres-cost', 'projections', 'opentelemetry', 'publishing', 'nats'];
const only = process.argv.slice(2);

const failed: string[] = [];
for (const name of scripts) {
  if (only.length > 0 && !only.includes(name)) continue;
  const file = join(here, `${name}.ts`);
  if (!existsSync(file)) {
    if (name === 'core') failed.push(`${name} (missing)`);
    continue;
  }
  console.log(`\n## bench/${name}.ts\n`);
  const result = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', file], { stdio: 'inherit' });
  if (result.status !== 0) {
    failed.push(`${name} (${result.error?.message ?? `exit ${result.status ?? result.signal}`})`);
  }
}

if (failed.length > 0) {
  console.error(`\nBenchmark scripts failed: ${failed.join(', ')}`);
  process.exit(1);
}
