import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEventfoldError, type AnyEvent, type RecordedEvent } from '../src/index.js';
import { PostgresEventStore } from '../src/postgres/index.js';
import { pgTestDatabase } from './support/postgres.js';

// Tails readAll while 16 writers commit thousands of events across streams, some of them on
// purpose in transactions that roll back, and some holding their transaction open (a slow append
// hook) after their positions were drawn, which is exactly when a naive `position > last` reader
// skips events for good.

const WRITERS = 16;
const ROUNDS = 90;
const STREAMS = 12;

const db = pgTestDatabase({ max: WRITERS * 2 + 4 });
afterAll(() => db.cleanup());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Outcome {
  readonly committed: Set<string>;
  readonly rolledBack: Set<string>;
}

describe('PostgresEventStore: gap-safe global log', () => {
  const schema = db.schema('gap');
  let fast: PostgresEventStore;
  let slow: PostgresEventStore;

  beforeAll(async () => {
    fast = await PostgresEventStore.create({ pool: db.pool, schema, pageSize: 50 });
    // Same schema, with a hook that keeps the transaction open for a while after the events (and
    // their positions) are in, and aborts appends carrying a `doom` event.
    slow = new PostgresEventStore({ pool: db.pool, schema, pageSize: 50 });
    slow.addAppendHook(async (events) => {
      await sleep(Math.random() * 8);
      if (events.some((e) => (e.data as { doom?: boolean }).doom === true)) throw new Error('doomed on purpose');
    });
  });
  afterAll(async () => {
    await fast.close();
    await slow.close();
  });

  it('a tailing reader sees every committed event exactly once, in position order, and nothing rolled back', async () => {
    const outcome: Outcome = { committed: new Set(), rolledBack: new Set() };
    let writing = true;

    const writer = async (w: number): Promise<void> => {
      for (let round = 0; round < ROUNDS; round++) {
        const tag = `w${w}-r${round}`;
        const stream = (k: number) => `s-${(w + round + k) % STREAMS}`;
        const events = (n: number, doom = false): AnyEvent[] =>
          Array.from({ length: n }, (_, i) => ({ type: 'Tick', data: { tag, i, ...(doom ? { doom: true } : {}) } }));
        const kind = round % 6;
        try {
          if (kind === 0) {
            // Rolled back: the hook throws after the events were inserted.
            await slow.append(stream(0), events(3, true), { expectedVersion: 'any' });
            throw new Error('a doomed append committed');
          } else if (kind === 1) {
            // Rolled back: appendMany whose second entry has a wrong expected version.
            await fast.appendMany([
              { streamId: stream(1), events: events(2), expectedVersion: 'any' },
              { streamId: `own-${w}`, events: events(1), expectedVersion: 999_999 },
            ]);
            throw new Error('an appendMany with a wrong expected version committed');
          } else if (kind === 2 || kind === 3) {
            const result = await slow.appendMany([
              { streamId: stream(0), events: events(2), expectedVersion: 'any' },
              { streamId: stream(5), events: events(1 + (round % 3)), expectedVersion: 'any' },
            ]);
            for (const r of result) for (const e of r.events) outcome.committed.add(e.eventId);
          } else {
            const result = await fast.append(stream(kind), events(1 + (round % 4)), { expectedVersion: 'any' });
            for (const e of result.events) outcome.committed.add(e.eventId);
          }
        } catch (error) {
          const expected =
            (kind === 0 && (error as Error).message === 'doomed on purpose') ||
            (kind === 1 && isEventfoldError(error, 'CONCURRENCY_CONFLICT'));
          if (!expected) throw error;
        }
      }
    };

    // The reader under test, and a naive one beside it for comparison.
    const seen: RecordedEvent[] = [];
    const tail = async (): Promise<void> => {
      let next = 1;
      for (;;) {
        const done = !writing;
        for await (const page of fast.readAll({ fromPosition: next }).pages()) {
          for (const event of page) seen.push(event);
          next = page[page.length - 1]!.position + 1;
        }
        if (done) return;
        await sleep(1);
      }
    };
    const naiveSeen: number[] = [];
    const naiveTail = async (): Promise<void> => {
      let last = 0;
      for (;;) {
        const done = !writing;
        const { rows } = await db.pool.query<{ position: string }>(
          `SELECT position FROM "${schema}".events WHERE position > $1 ORDER BY position LIMIT 500`,
          [last],
        );
        for (const row of rows) naiveSeen.push(Number(row.position));
        if (rows.length > 0) last = Number(rows[rows.length - 1]!.position);
        if (done && rows.length < 500) return;
        await sleep(1);
      }
    };

    const readers = [tail(), naiveTail()];
    const failures = (await Promise.allSettled(Array.from({ length: WRITERS }, (_, w) => writer(w)))).filter(
      (r) => r.status === 'rejected',
    );
    writing = false;
    await Promise.all(readers);
    expect(failures).toEqual([]);

    const { rows } = await db.pool.query<{ position: string; event_id: string; data: { doom?: boolean } }>(
      `SELECT position, event_id, data FROM "${schema}".events ORDER BY position`,
    );
    const table = rows.map((r) => ({ position: Number(r.position), eventId: r.event_id, doom: r.data.doom === true }));

    // The test has teeth: thousands of events, with positions lost to rolled-back transactions.
    expect(table.length).toBeGreaterThan(2000);
    expect(table.some((r) => r.doom)).toBe(false);
    const maxPosition = table[table.length - 1]!.position;
    expect(maxPosition).toBeGreaterThan(table.length);

    // Strictly increasing positions: nothing twice, nothing out of order.
    for (let i = 1; i < seen.length; i++) {
      if (!(seen[i]!.position > seen[i - 1]!.position)) {
        expect.fail(`reader saw position ${seen[i]!.position} after ${seen[i - 1]!.position}`);
      }
    }
    // Exactly the committed events: the final table, and every append that reported success.
    expect(seen.map((e) => ({ position: e.position, eventId: e.eventId }))).toEqual(
      table.map((r) => ({ position: r.position, eventId: r.eventId })),
    );
    const seenIds = new Set(seen.map((e) => e.eventId));
    expect([...outcome.committed].filter((id) => !seenIds.has(id))).toEqual([]);
    expect(seenIds.size).toBe(outcome.committed.size);
    expect(await fast.headPosition()).toBe(maxPosition);

    // For the record: how many events a `position > last` reader lost under the same load.
    const naive = new Set(naiveSeen);
    const skipped = table.filter((r) => !naive.has(r.position)).length;
    console.info(`gap-safety: ${table.length} events, ${maxPosition - table.length} positions rolled back; ` +
      `the naive reader skipped ${skipped}, the store's reader 0`);
  });
});
