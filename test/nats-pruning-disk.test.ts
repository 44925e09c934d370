import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { LifecycleEventStore, type RecordedEvent } from '../src/index.js';
import { NatsEventStore, NatsSnapshotStore, NatsStreamPruning, type NatsEventStoreOptions } from '../src/nats/index.js';
import { startNatsCluster, waitFor } from './support/nats-cluster.js';
import { uniqueStreamNames } from './support/nats.js';
import { storeHolds } from './support/store-files.js';

/**
 * NatsStreamPruning on servers of the test's own, whose store directories it searches for the
 * pruned payloads' bytes: a single server with file storage, and a 3-node cluster.
 */
const row = (e: RecordedEvent) => [e.streamId, e.version, e.position, e.eventId, e.type, e.data] as const;

describe('NatsStreamPruning on a server of its own (file storage)', () => {
  it('erases the pruned payloads from the server store; reads keep versions and positions, also after a restart', async () => {
    const cluster = await startNatsCluster({ size: 1 });
    try {
      const node = cluster.nodes[0]!;
      const names = uniqueStreamNames('erase');
      const options: NatsEventStoreOptions = { servers: cluster.servers, storage: 'file', allowPruning: true, pageSize: 2, ...names };
      let store = await NatsEventStore.create(options);
      const secret = `secret-${randomUUID()}`;
      const kept = `kept-${randomUUID()}`;
      const layered = new LifecycleEventStore(store);
      await layered.append('user-1', [{ type: 'Registered', data: { email: `${secret}-a` } }, { type: 'Noted', data: { note: `${secret}-b` } }], {
        expectedVersion: 'no-stream',
      });
      await layered.append('other', [{ type: 'Kept', data: { note: kept } }], { expectedVersion: 'no-stream' });
      await layered.append('user-1', [{ type: 'Noted', data: { note: `${secret}-c` } }], { expectedVersion: 2 });
      await layered.append('other', [{ type: 'Kept', data: { note: 'more' } }], { expectedVersion: 1 });
      const bucket = `${names.stream}_snap`;
      const snapshots = await NatsSnapshotStore.create({ connection: store.connection, bucket, storage: 'file' });
      await snapshots.save({ streamId: 'user-1', version: 2, schemaVersion: 1, state: { email: `${secret}-snapshot` }, takenAt: new Date() });
      await snapshots.save({ streamId: 'other', version: 1, schemaVersion: 1, state: { note: `${kept}-snapshot` }, takenAt: new Date() });
      await layered.tombstone('user-1', { reason: 'forget me' });
      // Written to the block files (the server flushes its write cache on its own).
      await waitFor('the events in the store files', () => storeHolds(node.storeDir, secret) && storeHolds(node.storeDir, kept), 20_000);
      // One append of three events, pruned in two steps: the first step's rewrite still held the
      // second event, and must not outlive the second step.
      await layered.append('steps', [1, 2, 3].map((n) => ({ type: 'Step', data: { note: `${secret}-step${n}` } })), { expectedVersion: 'no-stream' });
      await layered.append('steps', [{ type: 'Step', data: { note: 'last' } }], { expectedVersion: 3 });
      const before = await store.readAll().toArray();

      await waitFor('the snapshots in the store files', () => storeHolds(node.storeDir, `${secret}-snapshot`), 20_000);
      const pruning = new NatsStreamPruning(store, { snapshotBucket: bucket });
      expect(await pruning.purgeDeletedStream('user-1')).toEqual({ removedEvents: 3 });
      expect(await pruning.truncateBefore('steps', 2)).toEqual({ removedEvents: 1 });
      expect(await pruning.truncateBefore('steps', 4)).toEqual({ removedEvents: 2 });
      await waitFor('the erased payloads gone from the store files', () => !storeHolds(node.storeDir, secret), 20_000);
      expect(storeHolds(node.storeDir, kept)).toBe(true);
      expect(storeHolds(node.storeDir, `${kept}-snapshot`)).toBe(true);
      expect(await snapshots.load('user-1')).toBeUndefined();
      expect((await snapshots.load('other'))?.state).toEqual({ note: `${kept}-snapshot` });

      const pruned = (e: RecordedEvent) => (e.streamId === 'user-1' && e.type !== '$StreamDeleted') || (e.streamId === 'steps' && e.version < 4);
      const expected = before.map((e) => (pruned(e) ? [e.streamId, e.version, e.position, e.eventId, '$Pruned', null] : row(e)));
      const check = async (s: NatsEventStore) => {
        expect((await s.readAll().toArray()).map(row)).toEqual(expected);
        expect((await s.readStream('user-1').toArray()).map((e) => [e.version, e.type])).toEqual([
          [1, '$Pruned'],
          [2, '$Pruned'],
          [3, '$Pruned'],
          [4, '$StreamDeleted'],
        ]);
        expect((await s.readStream('user-1', { backwards: true }).toArray()).map((e) => e.version)).toEqual([4, 3, 2, 1]);
        expect(await s.headPosition()).toBe(before[before.length - 1]!.position);
      };
      await check(store);

      // The erasure is on disk: a restarted server has neither the bytes nor the events.
      await store.close();
      await node.kill();
      await node.start();
      store = await NatsEventStore.create(options);
      try {
        await check(store);
        expect(storeHolds(node.storeDir, secret)).toBe(false);
        const next = await store.append('other', [{ type: 'Kept', data: { note: 'after' } }], { expectedVersion: 2 });
        expect(next.position).toBeGreaterThan(before[before.length - 1]!.position);
      } finally {
        await store.close();
      }
    } finally {
      await cluster.stop();
    }
  }, 90_000);
});

describe('NatsStreamPruning on a 3-node cluster (replicas 3)', () => {
  it("erases every replica's copy of the stream; after the leader dies the new leader reads the same", async () => {
    const cluster = await startNatsCluster({ size: 3 });
    try {
      const names = uniqueStreamNames('cluster');
      const options: NatsEventStoreOptions = { servers: cluster.servers, replicas: 3, storage: 'file', allowPruning: true, pageSize: 2, ...names };
      let store: NatsEventStore | undefined;
      await waitFor('the JetStream meta leader', async () => {
        store = await NatsEventStore.create(options).catch(() => undefined);
        return store !== undefined;
      }, 60_000);
      const layered = new LifecycleEventStore(store!);
      const secret = `secret-${randomUUID()}`;
      await layered.append('user', [{ type: 'A', data: { s: `${secret}-1` } }, { type: 'A', data: { s: `${secret}-2` } }], { expectedVersion: 'no-stream' });
      await layered.append('other', [{ type: 'B', data: { n: 1 } }], { expectedVersion: 'no-stream' });
      await layered.tombstone('user');
      // The other stream's last append is pruned inside: a marker replaces it.
      await layered.append('other', [{ type: 'B', data: { n: 2 } }, { type: 'B', data: { n: 3 } }], { expectedVersion: 1 });
      const streamDirs = cluster.nodes.map((node) => join(node.storeDir, 'jetstream', '$G', 'streams', names.stream));
      await waitFor("the payloads in every replica's stream files", () => streamDirs.every((dir) => storeHolds(dir, secret)), 30_000);
      const pruning = new NatsStreamPruning(store!);
      expect(await pruning.purgeDeletedStream('user')).toEqual({ removedEvents: 2 });
      expect(await pruning.truncateBefore('other', 3)).toEqual({ removedEvents: 2 });
      const expected = (await store!.readAll().toArray()).map(row);
      expect(expected.map(([id, version, , , type]) => `${id}:${version}:${type}`)).toEqual([
        'user:1:$Pruned',
        'user:2:$Pruned',
        'other:1:$Pruned',
        'user:3:$StreamDeleted',
        'other:2:$Pruned',
        'other:3:B',
      ]);
      await waitFor("the payloads gone from every replica's stream files", () => streamDirs.every((dir) => !storeHolds(dir, secret)), 30_000);

      const jsm = await jetstreamManager(store!.connection, { checkAPI: false });
      const leader = (await jsm.streams.info(names.stream)).cluster?.leader;
      expect(leader).toBeDefined();
      await store!.close();
      await cluster.node(leader!).kill();
      const after = await NatsEventStore.connect({ ...options, retryWindowMs: 60_000 });
      try {
        await waitFor('a new stream leader that reads the pruned log', async () => {
          const all = await after.readAll().toArray().catch(() => undefined);
          return all !== undefined && JSON.stringify(all.map(row)) === JSON.stringify(expected);
        }, 60_000);
        expect((await after.readStream('other', { backwards: true }).toArray()).map((e) => e.type)).toEqual(['B', '$Pruned', '$Pruned']);
        expect((await after.append('other', [{ type: 'B', data: { n: 4 } }], { expectedVersion: 3 })).version).toBe(4);
      } finally {
        await after.close();
      }
    } finally {
      await cluster.stop();
    }
  }, 150_000);
});

