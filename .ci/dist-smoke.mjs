// Imports the built package the way applications do (ESM and CJS, every subpath) and checks that
// errors thrown by an adapter are the core's classes in both module systems.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = new URL('../', import.meta.url).pathname;

async function check(kind, core, sqlite, testing) {
  const store = new sqlite.SqliteEventStore({ path: ':memory:' });
  await store.append('s-1', [{ type: 'Happened', data: { n: 1 } }], { expectedVersion: 'no-stream' });
  try {
    await store.append('s-1', [{ type: 'Happened', data: { n: 2 } }], { expectedVersion: 'no-stream' });
    throw new Error(`${kind}: expected a ConcurrencyError`);
  } catch (error) {
    if (!(error instanceof core.ConcurrencyError) || error.actualVersion !== 1) {
      throw new Error(`${kind}: adapter error is not the core's ConcurrencyError: ${error}`);
    }
  }
  await store.close();
  if (testing !== undefined && typeof testing.describeEventStoreConformance !== 'function') throw new Error(`${kind}: testing export missing`);
  console.log(`${kind}: ok`);
}

await check('esm', await import(`${root}dist/index.js`), await import(`${root}dist/sqlite/index.js`), await import(`${root}dist/testing/index.js`));
// eventfold/testing loads without vitest or fast-check, from CJS as well.
await check('cjs', require(`${root}dist/index.cjs`), require(`${root}dist/sqlite/index.cjs`), require(`${root}dist/testing/index.cjs`));
await import(`${root}dist/postgres/index.js`);
require(`${root}dist/postgres/index.cjs`);
// eventfold/nats, both module systems: its error classes are the core's.
for (const nats of [await import(`${root}dist/nats/index.js`), require(`${root}dist/nats/index.cjs`)]) {
  if (typeof nats.NatsEventStore?.create !== 'function' || nats.NATS_CAPABILITIES.atomicMultiStreamAppend !== false) {
    throw new Error('eventfold/nats exports are missing');
  }
}
