import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { connect, headers as natsHeaders } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Aggregate,
  ConcurrencyError,
  InMemoryEventStore,
  InMemorySnapshotStore,
  InMemoryStreamPruning,
  InvalidStreamIdError,
  LifecycleEventStore,
  Repository,
  StreamNotFoundError,
  type Event,
  type EventStore,
  type RecordedEvent,
  type SnapshotStore,
  type StreamPruning,
} from '../src/index.js';
import { SqliteEventStore, SqliteSnapshotStore, SqliteStreamPruning } from '../src/sqlite/index.js';
import { PostgresEventStore, PostgresSnapshotStore, PostgresStreamPruning } from '../src/postgres/index.js';
import { NatsEventStore, NatsSnapshotStore } from '../src/nats/index.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';
import { pgTestDatabase } from './support/postgres.js';
import { NATS_URL, natsStores } from './support/nats.js';

/**
 * Earlier versions accepted C1 controls and invisible formatting characters in stream ids; new
 * streams now refuse them. Streams an earlier version wrote under such ids must stay readable by
 * their id (reads, Repository loads, snapshots, pruning) and may be continued, never created anew.
 * Each store gets such streams the way an earlier version wrote them: straight into its storage.
 */

type NoteEvent = Event<'Noted', { n: number }>;
class Notes extends Aggregate<NoteEvent> {
  total = 0;
  protected apply(event: NoteEvent): void {
    this.total += event.data.n;
  }
  note(n: number): void {
    this.raise('Noted', { n });
  }
  toSnapshot() {
    return { total: this.total };
  }
  restoreSnapshot(state: { total: number }) {
    this.total = state.total;
  }
}

/** Aggregate ids under the `notes` prefix: a bidi override, a C1 control, a zero-width space. */
const LEGACY = ['\u202egnp.exe', 'x\u0085y', 'a\u200bb'] as const;
const streamOf = (id: string) => `notes-${id}`;
/** What an earlier version stored for each legacy stream: two events, n = 1 and 2. */
const SEEDED = [1, 2];

interface Opened {
  readonly store: EventStore;
  readonly snapshots: SnapshotStore;
  readonly pruning?: StreamPruning;
}

/** The checks every store must pass once the legacy streams are in it (stored before `open`). */
async function expectLegacyStreamsUsable(opened: Opened): Promise<void> {
  const { store, snapshots } = opened;
  for (const id of LEGACY) {
    const streamId = streamOf(id);
    const events = await store.readStream(streamId).toArray();
    expect(events.map((e) => [e.streamId, e.version, (e.data as { n: number }).n])).toEqual([
      [streamId, 1, 1],
      [streamId, 2, 2],
    ]);
    expect(await store.streamVersion(streamId)).toBe(2);
    expect((await store.readStream(streamId, { backwards: true, limit: 1 }).toArray()).map((e) => e.version)).toEqual([2]);

    // Loads, with snapshots taken and used under the same id.
    const repository = new Repository(store, Notes, {
      streamPrefix: 'notes',
      snapshots: { store: snapshots, snapshotEvery: 1 },
      onSnapshotError: (error) => {
        throw error;
      },
    });
    const loaded = await repository.load(id);
    expect([loaded.version, loaded.total]).toEqual([2, 3]);
    expect((await snapshots.load(streamId))?.version).toBe(2);
    expect((await repository.load(id)).total).toBe(3);

    // Continued: an append that requires the stream to exist is taken.
    loaded.note(4);
    expect((await repository.save(loaded)).version).toBe(3);
    expect((await store.append(streamId, [{ type: 'Noted', data: { n: 8 } }], { expectedVersion: 'stream-exists' })).version).toBe(4);
    expect((await repository.load(id)).total).toBe(15);
  }

  // A new stream is never created under such an id; nothing is written.
  const head = await store.headPosition();
  for (const expectedVersion of ['any', 'no-stream', 0] as const) {
    await expect(store.append(streamOf(LEGACY[0]), [{ type: 'Noted', data: { n: 1 } }], { expectedVersion })).rejects.toBeInstanceOf(
      InvalidStreamIdError,
    );
    await expect(store.append('notes-new\u202e', [{ type: 'Noted', data: { n: 1 } }], { expectedVersion })).rejects.toBeInstanceOf(
      InvalidStreamIdError,
    );
  }
  // The refusal says how an old stream can still be written.
  await expect(store.append(streamOf(LEGACY[1]), [{ type: 'Noted', data: { n: 1 } }], { expectedVersion: 'any' })).rejects.toThrow(
    /C1.*New streams cannot take such an id.*'stream-exists'/,
  );
  await expect(store.append('notes-new\u202e', [{ type: 'Noted', data: { n: 1 } }], { expectedVersion: 'stream-exists' })).rejects.toBeInstanceOf(
    ConcurrencyError,
  );
  const fresh = new Notes('new\u0085');
  fresh.note(1);
  await expect(new Repository(store, Notes, { streamPrefix: 'notes' }).save(fresh)).rejects.toBeInstanceOf(InvalidStreamIdError);
  expect(await store.headPosition()).toBe(head);
  await expect(store.readStream('notes-new\u202e').toArray()).rejects.toBeInstanceOf(StreamNotFoundError);
  // What no version ever stored is still refused on reads.
  await expect(store.streamVersion('notes-\u001b[2J')).rejects.toBeInstanceOf(InvalidStreamIdError);

  // Pruned and deleted like any other stream.
  if (opened.pruning !== undefined) {
    const lifecycle = new LifecycleEventStore(store);
    const [bidi, c1] = [streamOf(LEGACY[0]), streamOf(LEGACY[1])];
    expect((await opened.pruning.truncateBefore(c1, 3)).removedEvents).toBe(2);
    expect((await lifecycle.readStream(c1).toArray()).map((e) => e.version)).toEqual([3, 4]);
    expect((await lifecycle.tombstone(bidi, { reason: 'legacy' })).version).toBe(5);
    expect((await opened.pruning.purgeDeletedStream(bidi)).removedEvents).toBe(4);
    expect((await store.readStream(bidi).toArray()).map((e) => e.type)).toEqual(['$Pruned', '$Pruned', '$Pruned', '$Pruned', '$StreamDeleted']);
  }
}

function legacyEvents(): { eventId: string; type: string; data: string; n: number; version: number }[] {
  return SEEDED.map((n, i) => ({ eventId: randomUUID(), type: 'Noted', data: JSON.stringify({ n }), n, version: i + 1 }));
}

describe('streams stored under ids that new streams may no longer take', () => {
  it('in memory (an earlier version’s streams put straight into the store’s maps)', async () => {
    const store = new InMemoryEventStore({ pageSize: 1 });
    const internals = store as unknown as { streams: Map<string, RecordedEvent[]>; log: RecordedEvent[] };
    expect(internals.streams).toBeInstanceOf(Map);
    for (const id of LEGACY) {
      const streamId = streamOf(id);
      const events = legacyEvents().map((e) =>
        Object.freeze({
          streamId,
          version: e.version,
          position: internals.log.length + e.version,
          eventId: e.eventId,
          type: e.type,
          data: Object.freeze({ n: e.n }),
          metadata: Object.freeze({}),
          recordedAt: new Date(),
        }) as RecordedEvent,
      );
      internals.streams.set(streamId, [...events]);
      internals.log.push(...events);
    }
    await expectLegacyStreamsUsable({ store, snapshots: new InMemorySnapshotStore(), pruning: new InMemoryStreamPruning(store) });
  });

  it('on SQLite (rows inserted with plain SQL)', async () => {
    const temp = sqliteTempDir('eventfold-legacy-ids-');
    try {
      const path = temp.file('legacy.db');
      await new SqliteEventStore({ path }).close();
      const raw = new Database(path);
      const insert = raw.prepare(
        'INSERT INTO eventfold_events (stream_id, version, type, data, metadata, event_id, recorded_at) VALUES (?, ?, ?, ?, NULL, ?, ?)',
      );
      for (const id of LEGACY) {
        for (const e of legacyEvents()) insert.run(streamOf(id), e.version, e.type, e.data, e.eventId, Date.now());
      }
      raw.close();
      const store = new SqliteEventStore({ path });
      const snapshots = new SqliteSnapshotStore({ database: store.database });
      const pruning = new SqliteStreamPruning({ database: store.database });
      try {
        await expectLegacyStreamsUsable({ store, snapshots, pruning });
      } finally {
        await pruning.close();
        await snapshots.close();
        await store.close();
      }
    } finally {
      temp.cleanup();
    }
  });

  const pg = pgTestDatabase({ max: 4 });
  afterAll(() => pg.cleanup());

  it('on PostgreSQL (appended with plain SQL through the schema’s append function)', async () => {
    const schema = pg.schema('legacy_ids');
    await (await PostgresEventStore.create({ pool: pg.pool, schema })).close();
    for (const id of LEGACY) {
      const events = legacyEvents();
      await pg.pool.query(`SELECT * FROM "${schema}".append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, false)`, [
        [streamOf(id)],
        [0],
        [events.length],
        events.map(() => 1),
        events.map((e) => e.eventId),
        events.map((e) => e.type),
        `[${events.map((e) => e.data).join(',')}]`,
        `[${events.map(() => '{}').join(',')}]`,
        new Date(),
      ]);
    }
    const store = await PostgresEventStore.create({ pool: pg.pool, schema, pageSize: 1 });
    const snapshots = new PostgresSnapshotStore({ pool: pg.pool, schema });
    const pruning = new PostgresStreamPruning({ pool: pg.pool, schema });
    try {
      await expectLegacyStreamsUsable({ store, snapshots, pruning });
    } finally {
      await pruning.close();
      await snapshots.close();
      await store.close();
    }
  });

  const nats = natsStores('legacy-ids');
  afterAll(() => nats.cleanup());

  it('on NATS JetStream (messages published straight to the stream’s subject)', async () => {
    const created = await nats.create();
    const { stream, subjectPrefix } = created.options;
    await created.close();
    const connection = await connect({ servers: NATS_URL });
    try {
      const js = jetstream(connection);
      for (const id of LEGACY) {
        const streamId = streamOf(id);
        const events = legacyEvents();
        const h = natsHeaders();
        h.set('Eventfold-Version', String(events.length));
        h.set('Eventfold-Count', String(events.length));
        h.set('Eventfold-Prev', '0');
        const payload = JSON.stringify({ s: streamId, v: 1, t: Date.now(), e: events.map((e) => [e.eventId, e.type, { n: e.n }, {}]) });
        // The subject token: every UTF-8 byte outside A-Z a-z 0-9 _ - as =XX.
        const token = [...Buffer.from(streamId, 'utf8')]
          .map((b) => (/[A-Za-z0-9_-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`))
          .join('');
        await js.publish(`${subjectPrefix}.s.${token}`, payload, { headers: h, msgID: events[0]!.eventId, expect: { lastSubjectSequence: 0 } });
      }
      const store = await NatsEventStore.connect({ servers: NATS_URL, stream, subjectPrefix });
      const snapshots = await NatsSnapshotStore.create({ connection: store.connection, bucket: nats.bucket('legacy'), storage: 'memory' });
      try {
        await expectLegacyStreamsUsable({ store, snapshots });
      } finally {
        await store.close();
      }
    } finally {
      await connection.close();
    }
  });
});
