import { afterAll, describe, it } from 'vitest';
import type { EventLimits } from '../src/index.js';
import { SqliteEventStore } from '../src/sqlite/index.js';
import { describeEventStoreConformance } from '../src/testing/conformance.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';

const temp = sqliteTempDir();
afterAll(() => temp.cleanup());
let files = 0;

// A real file per store (WAL, synchronous=FULL as shipped), with a small page size so multi-page
// reads are exercised by every read test.
const fileStore = (limits?: Partial<EventLimits>) =>
  new SqliteEventStore({ path: temp.file(`conformance-${++files}.db`), pageSize: 7, ...(limits ? { limits } : {}) });

describeEventStoreConformance('SqliteEventStore (file)', () => fileStore(), {
  framework: { describe, it },
  createStoreWithLimits: (limits) => fileStore(limits),
});

describeEventStoreConformance('SqliteEventStore (:memory:)', () => new SqliteEventStore({ path: ':memory:' }), {
  framework: { describe, it },
  createStoreWithLimits: (limits) => new SqliteEventStore({ path: ':memory:', limits }),
});
