import { afterAll, describe, it } from 'vitest';
import type { EventLimits } from '../src/index.js';
import { PostgresEventStore } from '../src/postgres/index.js';
import { describeEventStoreConformance } from '../src/testing/conformance.js';
import { pgTestDatabase } from './support/postgres.js';

// One pool for the file, a fresh schema per store (migrate() is idempotent and quick), and a small
// page size so every read test crosses page boundaries.
const db = pgTestDatabase({ max: 16 });
afterAll(() => db.cleanup());

const createStore = (limits?: Partial<EventLimits>) =>
  PostgresEventStore.create({ pool: db.pool, schema: db.schema('conf'), pageSize: 7, ...(limits ? { limits } : {}) });

describeEventStoreConformance('PostgresEventStore', () => createStore(), {
  framework: { describe, it },
  createStoreWithLimits: (limits) => createStore(limits),
  propertyRuns: 15,
});
