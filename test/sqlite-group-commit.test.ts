import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { defineProjection, Repository } from '../src/index.js';
import { addInlineSqliteProjection, SqliteEventStore, type SqliteProjectionContext } from '../src/sqlite/index.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';
import { planArb, runPlan } from './support/serial-order.js';
import { Counter } from './support/counter.js';

const temp = sqliteTempDir('eventfold-sqlite-group-');
afterAll(() => temp.cleanup());

let files = 0;
const freshFile = () => temp.file(`group-${++files}.db`);

/**
 * An append to a `lead` stream first: after a quiet spell the first append is committed at once,
 * alone, so the appends made behind it share one transaction.
 */
const lead = (store: SqliteEventStore) => store.append('lead', [{ type: 'A', data: {} }], { expectedVersion: 'no-stream' });

describe('SqliteEventStore group commit', () => {
  it('is on by default: appends made in the same turn share one transaction', async () => {
    const store = new SqliteEventStore({ path: freshFile() });
    try {
      const burst = (round: number) =>
        Promise.all(Array.from({ length: 16 }, (_, i) => store.append(`s${round}-${i}`, [{ type: 'A', data: { i } }], { expectedVersion: 'no-stream' })));
      const results = await burst(1);
      expect(results.map((r) => r.version)).toEqual(Array(16).fill(1));
      expect(new Set(results.map((r) => r.position)).size).toBe(16);
      // After a quiet spell the first append is committed at once, in its caller's call (no wait
      // without concurrency); the fifteen made behind it share the next transaction.
      expect(store.groupCommitStats).toEqual({ groups: 2, appends: 16, largestGroup: 15 });
      // Concurrency seen, the next burst goes whole into one transaction.
      await burst(2);
      expect(store.groupCommitStats).toEqual({ groups: 3, appends: 32, largestGroup: 16 });
      // Right after a group of 16 an append still waits for company (a few microtask hops): not yet
      // written when its call returns. Alone, it makes a group of one.
      const count = (id: string) => store.database.prepare('SELECT count(*) FROM eventfold_events WHERE stream_id = ?').pluck().get(id);
      const gathered = store.append('gathered', [{ type: 'A', data: {} }], { expectedVersion: 'no-stream' });
      expect(count('gathered')).toBe(0);
      await gathered;
      expect(store.groupCommitStats).toMatchObject({ groups: 4, appends: 33 });
      // After a group of one, an append without concurrency is committed by the time its call returns.
      const alone = store.append('alone', [{ type: 'A', data: {} }], { expectedVersion: 'no-stream' });
      expect(count('alone')).toBe(1);
      await alone;
      expect(store.groupCommitStats).toMatchObject({ groups: 5, appends: 34 });
    } finally {
      await store.close();
    }
  });

  it('switched off, every append is its own transaction', async () => {
    const store = new SqliteEventStore({ path: freshFile(), groupCommit: false });
    try {
      await Promise.all(Array.from({ length: 4 }, (_, i) => store.append(`s-${i}`, [{ type: 'A', data: {} }], { expectedVersion: 'any' })));
      expect(store.groupCommitStats).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('refuses bad settings with a typed error', () => {
    for (const groupCommit of [{ maxAppends: 0 }, { maxEvents: -1 }, { maxDelayMs: 1.5 }, 'yes']) {
      expect(() => new SqliteEventStore({ path: freshFile(), groupCommit: groupCommit as never })).toThrowError(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
  });

  it('a conflict fails only its own append; its neighbours in the transaction commit', async () => {
    const store = new SqliteEventStore({ path: freshFile() });
    try {
      await store.append('taken', [{ type: 'A', data: {} }], { expectedVersion: 'no-stream' });
      const settled = await Promise.allSettled([
        lead(store),
        store.append('free-1', [{ type: 'A', data: {} }], { expectedVersion: 'no-stream' }),
        store.append('taken', [{ type: 'B', data: {} }], { expectedVersion: 'no-stream' }),
        store.appendMany([
          { streamId: 'free-2', events: [{ type: 'A', data: {} }], expectedVersion: 'no-stream' },
          { streamId: 'taken-too', events: [{ type: 'A', data: {} }], expectedVersion: 3 },
        ]),
        store.append('free-3', [{ type: 'A', data: {} }], { expectedVersion: 'no-stream' }),
      ]);
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled']);
      const conflict = (settled[2] as PromiseRejectedResult).reason as { code: string; actualVersion: number };
      expect(conflict).toMatchObject({ code: 'STREAM_ALREADY_EXISTS', actualVersion: 1 });
      expect((settled[3] as PromiseRejectedResult).reason).toMatchObject({ code: 'CONCURRENCY_CONFLICT', streamId: 'taken-too', actualVersion: 0 });
      expect(store.groupCommitStats?.largestGroup).toBe(4);
      // The failed appendMany is atomic: free-2 was not written either.
      expect(await store.streamVersion('free-2')).toBe(0);
      expect(await store.streamVersion('taken')).toBe(1);
      expect((await store.readAll().toArray()).map((e) => e.streamId)).toEqual(['taken', 'lead', 'free-1', 'free-3']);
    } finally {
      await store.close();
    }
  });

  it('a hook that throws for one append rolls back that append only (savepoint), hook writes included', async () => {
    const store = new SqliteEventStore({ path: freshFile() });
    try {
      store.transaction((db) => db.exec('CREATE TABLE seen (stream_id TEXT NOT NULL)'));
      store.addAppendHook((events, db) => {
        db.prepare('INSERT INTO seen VALUES (?)').run(events[0]!.streamId);
        if (events[0]!.streamId === 'poison') throw new Error('hook refuses poison');
      });
      const settled = await Promise.allSettled([
        lead(store),
        ...['a', 'poison', 'b'].map((id) => store.append(id, [{ type: 'A', data: {} }], { expectedVersion: 'no-stream' })),
      ]);
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      expect(String((settled[2] as PromiseRejectedResult).reason)).toContain('hook refuses poison');
      expect(store.groupCommitStats?.largestGroup).toBe(3);
      const seen = store.database.prepare('SELECT stream_id FROM seen ORDER BY rowid').pluck().all();
      expect(seen).toEqual(['lead', 'a', 'b']);
      expect((await store.readAll().toArray()).map((e) => e.streamId)).toEqual(['lead', 'a', 'b']);
    } finally {
      await store.close();
    }
  });

  it('an inline projection handler that throws for one append fails only that append', async () => {
    const store = new SqliteEventStore({ path: freshFile() });
    try {
      addInlineSqliteProjection(store, defineProjection<{ type: 'Added'; data: { n: number } }, SqliteProjectionContext>({
        name: 'totals',
        setup: (ctx) => {
          ctx.db.exec('CREATE TABLE IF NOT EXISTS totals (stream_id TEXT PRIMARY KEY, n INTEGER NOT NULL)');
        },
        handlers: {
          Added: (event, ctx) => {
            if (event.data.n < 0) throw new Error('negative');
            ctx.db.prepare('INSERT INTO totals VALUES (?, ?) ON CONFLICT (stream_id) DO UPDATE SET n = n + excluded.n').run(event.streamId, event.data.n);
          },
        },
      }));
      const settled = await Promise.allSettled(
        [0, 1, -1, 2].map((n, i) => store.append(`t-${i}`, [{ type: 'Added', data: { n } }], { expectedVersion: 'no-stream' })),
      );
      // The first goes alone (no concurrency seen yet); the other three share a transaction.
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      expect(store.groupCommitStats?.largestGroup).toBe(3);
      expect(store.database.prepare('SELECT stream_id, n FROM totals ORDER BY stream_id').raw().all()).toEqual([
        ['t-0', 0],
        ['t-1', 1],
        ['t-3', 2],
      ]);
      expect(await store.streamVersion('t-2')).toBe(0);
    } finally {
      await store.close();
    }
  });

  it('two appends to one stream never share a transaction, and keep their order', async () => {
    const store = new SqliteEventStore({ path: freshFile() });
    try {
      const results = await Promise.all([
        store.append('one', [{ type: 'A', data: {} }], { expectedVersion: 'any' }),
        store.append('one', [{ type: 'B', data: {} }], { expectedVersion: 'any' }),
        store.append('two', [{ type: 'A', data: {} }], { expectedVersion: 'any' }),
      ]);
      expect(results.map((r) => r.version)).toEqual([1, 2, 1]);
      expect((await store.readStream('one').toArray()).map((e) => e.type)).toEqual(['A', 'B']);
      expect(store.groupCommitStats).toEqual({ groups: 2, appends: 3, largestGroup: 2 });
    } finally {
      await store.close();
    }
  });

  it('respects maxAppends and maxEvents', async () => {
    const store = new SqliteEventStore({ path: freshFile(), groupCommit: { maxAppends: 3, maxEvents: 4 } });
    try {
      await Promise.all(Array.from({ length: 7 }, (_, i) => store.append(`m-${i}`, [{ type: 'A', data: {} }], { expectedVersion: 'any' })));
      expect(store.groupCommitStats).toEqual({ groups: 3, appends: 7, largestGroup: 3 });
      const two = Array.from({ length: 2 }, () => ({ type: 'A', data: {} }));
      await Promise.all(Array.from({ length: 3 }, (_, i) => store.append(`e-${i}`, two, { expectedVersion: 'any' })));
      // 2 + 2 events fit in 4; the third append waits for the next transaction.
      expect(store.groupCommitStats).toEqual({ groups: 5, appends: 10, largestGroup: 3 });
    } finally {
      await store.close();
    }
  });

  it('close() commits appends already accepted; onAppended hears each transaction once', async () => {
    const file = freshFile();
    const store = new SqliteEventStore({ path: file });
    const heard: number[] = [];
    store.onAppended((last) => heard.push(last));
    const pending = Array.from({ length: 5 }, (_, i) => store.append(`c-${i}`, [{ type: 'A', data: {} }], { expectedVersion: 'no-stream' }));
    await store.close();
    expect((await Promise.all(pending)).map((r) => r.position)).toEqual([1, 2, 3, 4, 5]);
    // The first append went alone, at once; the four behind it in one transaction, at close().
    expect(heard).toEqual([1, 5]);
    const reopened = new SqliteEventStore({ path: file });
    expect(await reopened.headPosition()).toBe(5);
    await reopened.close();
  });

  it('Repository.save and update from concurrent callers are grouped and keep their checks', async () => {
    const store = new SqliteEventStore({ path: freshFile() });
    try {
      const repository = new Repository(store, Counter);
      await Promise.all(
        Array.from({ length: 5 }, (_, i) => {
          const counter = new Counter(`c${i}`);
          counter.add(1);
          return repository.save(counter);
        }),
      );
      // The first save goes alone (no concurrency seen yet); the four behind it together.
      expect(store.groupCommitStats).toMatchObject({ groups: 2, largestGroup: 4 });
      // Two updates per counter at once: one of each pair conflicts, reloads and retries.
      await Promise.all(Array.from({ length: 8 }, (_, i) => repository.update(`c${i % 4}`, (c) => c.add(1), { retries: 10 })));
      for (let i = 0; i < 4; i++) expect((await repository.load(`c${i}`)).total).toBe(3);
    } finally {
      await store.close();
    }
  });

  it('property: concurrent conflicting and independent appends come out as some serial order', async () => {
    const file = freshFile();
    const store = new SqliteEventStore({ path: file });
    const reader = new SqliteEventStore({ database: new Database(file) });
    let run = 0;
    let conflicts = 0;
    try {
      await fc.assert(
        fc.asyncProperty(planArb, async (plan) => {
          conflicts += await runPlan(store, reader, `p${++run}`, plan);
        }),
        { numRuns: 120 },
      );
      // The property exercised what it is about: shared transactions (at most one append per
      // stream each, and the plans use 4 streams) and conflicts inside them.
      expect(store.groupCommitStats!.largestGroup).toBe(4);
      expect(conflicts).toBeGreaterThan(0);
    } finally {
      await store.close();
      await reader.close();
    }
  });
});
