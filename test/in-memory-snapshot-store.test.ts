import { describe, it } from 'vitest';
import { InMemoryEventStore, InMemorySnapshotStore } from '../src/index.js';
import { describeSnapshotStoreConformance } from '../src/testing/index.js';

describeSnapshotStoreConformance('InMemorySnapshotStore', () => ({
  events: new InMemoryEventStore(),
  snapshots: new InMemorySnapshotStore(),
}), { framework: { describe, it } });
