import type { Event, RecordedEvent } from '../events/types.js';
import type { CheckpointStore } from '../projections/checkpoint-store.js';
import type { Projection, UnknownEventPolicy } from '../projections/projection.js';
import type { ProjectionRunner, ProjectionRunnerSettings } from '../projections/runner.js';
import type { EventStore } from '../store/event-store.js';
import type { ConformanceSuiteOptions } from './framework.js';

/**
 * The "accounts" model the projection conformance suite runs on every adapter: its events, the
 * read model an adapter reads back, the fold it must equal, and what a fixture provides.
 */

export type AccountDeposited = Event<'Deposited', { amount: number }>;
export type AccountWithdrawn = Event<'Withdrawn', { amount: number }>;
/** An event the accounts projection has no handler for. */
export type AccountNoted = Event<'Noted', { text: string }>;
export type AccountEvent = AccountDeposited | AccountWithdrawn | AccountNoted;

export interface AccountRow {
  readonly balance: number;
  readonly events: number;
  readonly lastVersion: number;
}

/** One row of the `applied` table: the position of an event a handler applied, and by which runner. */
export interface AppliedRow {
  readonly position: number;
  readonly runner: string;
}

/** The accounts read model as read back from the adapter's storage. */
export interface AccountsReadModel {
  readonly accounts: ReadonlyMap<string, AccountRow>;
  /** Every applied row (duplicates included), ordered by position then runner. */
  readonly applied: readonly AppliedRow[];
}

/** What a correct accounts projection must end with: the plain left fold over the log. */
export interface AccountsFold {
  readonly accounts: Map<string, AccountRow>;
  /** Positions of the events the handlers applied (`Noted` has no handler). */
  readonly applied: number[];
}

export function foldAccounts(events: readonly RecordedEvent[]): AccountsFold {
  const accounts = new Map<string, AccountRow>();
  const applied: number[] = [];
  for (const e of events) {
    if (e.type !== 'Deposited' && e.type !== 'Withdrawn') continue;
    const amount = (e.data as { amount: number }).amount;
    const row = accounts.get(e.streamId) ?? { balance: 0, events: 0, lastVersion: 0 };
    accounts.set(e.streamId, {
      balance: row.balance + (e.type === 'Deposited' ? amount : -amount),
      events: row.events + 1,
      lastVersion: e.version,
    });
    applied.push(e.position);
  }
  return { accounts, applied };
}

/** One append: a stream and its events, as the property generates them. */
export interface PlannedAppend {
  readonly streamId: string;
  readonly events: readonly AccountEvent[];
}

export function planEvents(kinds: readonly { stream: number; kind: 0 | 1 | 2; amount: number }[]): PlannedAppend[] {
  return kinds.map(({ stream, kind, amount }) => ({
    streamId: `account-${stream}`,
    events: [
      kind === 0
        ? { type: 'Deposited', data: { amount } }
        : kind === 1
          ? { type: 'Withdrawn', data: { amount } }
          : { type: 'Noted', data: { text: `note ${amount}` } },
    ] as AccountEvent[],
  }));
}

export interface AccountsProjectionOptions {
  /** Default 'accounts'. */
  readonly name?: string;
  /** Default 1. */
  readonly version?: number;
  /** Passed through to `defineProjection` when set. */
  readonly unknownEvents?: UnknownEventPolicy;
  /** The handler throws `new Error('boom at <position>')`, before writing, at this position while `armed()`. */
  readonly failAt?: { readonly position: number; readonly armed: () => boolean };
  /** Stored as `runner` in every applied row, to tell runners apart. Default ''. */
  readonly runnerId?: string;
}

/**
 * What an adapter differs in. `accounts(options)` must define the accounts projection in the
 * adapter's context type: handlers for `Deposited` / `Withdrawn` that upsert the stream's row
 * (balance ± amount, events + 1, lastVersion = event version) and add an applied row
 * (position, runnerId); `setup` creating its storage if the adapter needs it; `reset` emptying both.
 */
export interface ProjectionConformanceFixture<Ctx> {
  /** A fresh, empty event store. */
  readonly store: EventStore;
  /** Where this adapter's runners keep their checkpoints (the same storage the runners use). */
  readonly checkpoints: CheckpointStore;
  accounts(options?: AccountsProjectionOptions): Projection<AccountEvent, Ctx>;
  /** A new async runner of `projection` over `store`, its read model and its checkpoints. */
  runner(projection: Projection<AccountEvent, Ctx>, settings?: ProjectionRunnerSettings): ProjectionRunner<AccountEvent, Ctx>;
  /**
   * Installs `projection` inline (in every append's transaction); resolves to the remover. Left out
   * by a store that runs no code inside its appends (NATS JetStream), with `inline: false` in the
   * suite's options: the inline case is then not part of that store's suite.
   */
  addInline?(projection: Projection<AccountEvent, Ctx>): (() => void) | Promise<() => void>;
  readModel(): AccountsReadModel | Promise<AccountsReadModel>;
  /**
   * Damages the read model behind the runner's back, as a buggy handler would: sets account-1's
   * balance to -1 and adds an applied row at position 999999.
   */
  damage(): void | Promise<void>;
  /** Closes the store and frees what the fixture holds (runners are stopped by the suite first). */
  close(): void | Promise<void>;
}

export type ProjectionConformanceFactory<Ctx> = () => ProjectionConformanceFixture<Ctx> | Promise<ProjectionConformanceFixture<Ctx>>;

export interface ProjectionConformanceOptions extends ConformanceSuiteOptions {
  /** fast-check runs of the crash/restart property. Default 25. */
  readonly propertyRuns?: number;
  /**
   * How long to wait after a runner turns live before relying on its wake-up alone (e.g. a
   * PostgreSQL runner sets up LISTEN right after taking the lock). Default 0.
   */
  readonly wakeUpSettleMs?: number;
  /** How long a test waits for a catch-up or rebuild (not the test's own timeout). Default 20,000 ms. */
  readonly timeoutMs?: number;
  /** Whether the store runs projections inline, in the append's transaction (`addInline`). Default true. */
  readonly inline?: boolean;
}
