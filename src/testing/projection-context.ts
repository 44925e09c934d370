import type { RecordedEvent } from '../events/types.js';
import type { EventStore } from '../store/event-store.js';
import { expect } from './expect.js';
import type { SuiteRegistrar } from './framework.js';
import { foldAccounts, type ProjectionConformanceFixture } from './projection-model.js';

/**
 * What every block of the projection conformance suite gets. A block is a function of this in its
 * own file (projection-cases-*.ts), listed once in projection-conformance.ts: adding cases means
 * adding a file and a line.
 */
export interface ProjectionSuite<Ctx> {
  /** Groups a block's tests under a name in the report. */
  readonly describe: SuiteRegistrar['describe'];
  /** Declares a test; every fixture it opened is released (runners stopped, store closed) when it ends. */
  readonly test: SuiteRegistrar['test'];
  /** Like `test`, with the slow-test timeout (the fast-check property). */
  readonly slowTest: SuiteRegistrar['slowTest'];
  /**
   * A fresh fixture whose runners are tracked, so a failed test still stops them before closing.
   * Its `addInline` throws when the fixture has none (run only where the suite's `inline` holds).
   */
  fresh(): Promise<SuiteFixture<Ctx>>;
  /** Stops the fixture's runners and closes it now (a property run releases each fixture it opens). */
  release(fixture: ProjectionConformanceFixture<Ctx>): Promise<void>;
  /** How long a test waits for a catch-up or rebuild. */
  readonly timeoutMs: number;
  readonly wakeUpSettleMs: number | undefined;
  readonly propertyRuns: number;
  /** The store runs projections inline (the fixture has `addInline`). */
  readonly inline: boolean;
}

/** A fixture as the cases get it: `addInline` always there (it refuses when the store has none). */
export type SuiteFixture<Ctx> = ProjectionConformanceFixture<Ctx> & Required<Pick<ProjectionConformanceFixture<Ctx>, 'addInline'>>;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Appends `count` events (Deposited, every 5th Withdrawn, every 7th Noted) over `streams` streams,
 * ten per appendMany, or one `append` per stream where the store has no atomic multi-stream append.
 */
export async function seed(store: EventStore, count: number, streams = 4): Promise<void> {
  const start = await store.headPosition();
  for (let i = start; i < start + count; i += 10) {
    const byStream = new Map<string, { type: string; data: unknown }[]>();
    for (let j = i; j < Math.min(i + 10, start + count); j++) {
      const type = j % 5 === 4 ? 'Withdrawn' : j % 7 === 6 ? 'Noted' : 'Deposited';
      const streamId = `account-${j % streams}`;
      byStream.set(streamId, [...(byStream.get(streamId) ?? []), { type, data: { amount: j + 1, text: 'x' } }]);
    }
    const appends = [...byStream].map(([streamId, events]) => ({ streamId, events, expectedVersion: 'any' as const }));
    if (store.capabilities.atomicMultiStreamAppend) await store.appendMany(appends);
    else for (const append of appends) await store.append(append.streamId, append.events, { expectedVersion: 'any' });
  }
}

/**
 * The position of the log's n-th event (1-based; 0 for none): the cases name events by their
 * place in the log, since stores number positions differently (NATS JetStream leaves gaps).
 */
export async function logPositions(store: EventStore): Promise<(n: number) => number> {
  const positions = (await store.readAll().toArray()).map((event) => event.position);
  return (n) => {
    if (n === 0) return 0;
    const position = positions[n - 1];
    if (position === undefined) throw new Error(`The log has no event number ${n}; it has ${positions.length}.`);
    return position;
  };
}

export type Readable = Pick<ProjectionConformanceFixture<unknown>, 'store' | 'readModel'>;

export async function expectFoldOf(fixture: Readable, events: readonly RecordedEvent[]): Promise<void> {
  const expected = foldAccounts(events);
  const actual = await fixture.readModel();
  expect(new Map(actual.accounts)).toEqual(expected.accounts);
  // Positions in order, duplicates included: each handled event applied exactly once.
  expect(actual.applied.map((row) => row.position)).toEqual(expected.applied);
}

export async function expectFolded(fixture: Readable): Promise<void> {
  await expectFoldOf(fixture, await fixture.store.readAll().toArray());
}
