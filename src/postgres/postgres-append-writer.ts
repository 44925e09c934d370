import type { PoolClient } from 'pg';
import { isEventfoldError } from '../errors.js';
import { frozenDate } from '../events/frozen-date.js';
import type { RecordedEvent } from '../events/types.js';
import type { AppendResult } from '../store/event-store.js';
import type { GroupMember, GroupOutcome } from '../store/group-commit.js';
import type { PreparedAppend } from '../store/store-input.js';
import {
  appendCall,
  appendOneCall,
  appendStatements,
  buildResults,
  conflictFrom,
  eventsOf,
  groupCall,
  groupOutcomes,
  type AppendRow,
  type AppendStatements,
} from './append-calls.js';
import type { PgConnection } from './connection.js';
import { isQueryTimeout } from './pg-errors.js';
import type { AfterCommitNotifier } from './notifier.js';

/**
 * Runs inside an append's transaction, on its client, after the events are inserted and before
 * COMMIT. Write your own rows with `client` (inline projections, an outbox); a throw (or a
 * rejected promise) rolls back the append, the hook's writes included. With group commit, each
 * append (each `append` or `appendMany` call) runs its hooks in its own savepoint: a throw rolls
 * back that append only and its caller gets the error; the others in the transaction commit. A
 * hook statement without an answer within `query_timeout` fails the whole group instead (the
 * connection is dropped; see `StoreTimeoutError`).
 */
export type PostgresAppendHook = (events: readonly RecordedEvent[], client: PoolClient) => Promise<void>;

const SAVEPOINT = 'eventfold_append';

/**
 * The write side of `PostgresEventStore`: one call's appends (`commitOne`) or a group of calls in one
 * transaction (`commitGroup`), with the append hooks and the after-commit wake-up.
 */
export class PostgresAppendWriter {
  private readonly sql: AppendStatements;

  constructor(
    private readonly connection: PgConnection,
    private readonly hooks: readonly PostgresAppendHook[],
    private readonly notifyInTransaction: boolean,
    private readonly notifier: AfterCommitNotifier | undefined,
  ) {
    this.sql = appendStatements(connection.schema);
  }

  /** One call's appends in one transaction (one round trip without hooks). */
  async commitOne(appends: readonly PreparedAppend[]): Promise<AppendResult[]> {
    const recordedAt = frozenDate(Date.now());
    const single = appends.length === 1 && appends[0]!.events.length === 1;
    const call = single
      ? appendOneCall(this.sql, appends[0]!, recordedAt, this.notifyInTransaction)
      : appendCall(this.sql, appends, recordedAt, this.notifyInTransaction);
    const hooks = this.hooks.slice();
    let results: AppendResult[];
    try {
      if (hooks.length === 0) {
        const { rows } = await this.connection.query<AppendRow>(call.query, 'append events', true);
        results = buildResults(appends, rows, call.eventIds, recordedAt);
      } else {
        results = await this.connection.transaction('append events', async (client) => {
          const { rows } = await client.query<AppendRow>(call.query);
          const built = buildResults(appends, rows, call.eventIds, recordedAt);
          const all = eventsOf(built);
          for (const hook of hooks) await hook(all, client);
          return built;
        });
      }
    } catch (error) {
      throw conflictFrom(error, appends) ?? error;
    }
    this.committed(results);
    return results;
  }

  /**
   * Several calls in one transaction: one `append_group` call (each call checked on its own), then,
   * with hooks, each call's hooks in a savepoint. Resolves to one outcome per member. Rejects when
   * the group's transaction as a whole failed and its outcome is unknown or failed for all (lost
   * connection, no answer within query_timeout, closed store): then no member may be reported committed. Any other failure of the
   * group (which rolls it back) is retried member by member, so one bad append cannot fail the rest.
   */
  async commitGroup(members: readonly GroupMember[]): Promise<GroupOutcome<AppendResult[]>[]> {
    if (members.length === 1) return [await settle(this.commitOne(members[0]!.appends))];
    const recordedAt = frozenDate(Date.now());
    const call = groupCall(this.sql, members, recordedAt, this.notifyInTransaction);
    const hooks = this.hooks.slice();
    let outcomes: GroupOutcome<AppendResult[]>[] | undefined;
    let rows: AppendRow[] | undefined;
    try {
      if (hooks.length === 0) {
        // Committed when it returns: its rows are read outside the try, never retried.
        rows = (await this.connection.query<AppendRow>(call.query, 'append events', true)).rows;
      } else {
        outcomes = await this.connection.transaction('append events', async (client) => {
          const { rows } = await client.query<AppendRow>(call.query);
          return this.runHooks(client, hooks, groupOutcomes(members, rows, call.eventIds, recordedAt));
        });
      }
    } catch (error) {
      if (isEventfoldError(error, 'STORE_UNAVAILABLE') || isEventfoldError(error, 'STORE_CLOSED')) throw error;
      // No answer within query_timeout: the server may still be running the statement (or the
      // COMMIT) and commit it later. Retrying the members would write them twice, or tell them
      // "conflict" about their own events.
      if (isQueryTimeout(error)) throw error;
      // The statement (or the transaction) failed and was rolled back: nothing of the group is
      // stored. Commit each member alone, so the error reaches only the append that caused it.
      return Promise.all(members.map((member) => settle(this.commitOne(member.appends))));
    }
    outcomes ??= groupOutcomes(members, rows!, call.eventIds, recordedAt);
    const written: AppendResult[] = [];
    for (const outcome of outcomes) if (outcome.ok) written.push(...outcome.value);
    this.committed(written);
    return outcomes;
  }

  /** Each written member's hooks in a savepoint; a throw takes back that member only. */
  private async runHooks(
    client: PoolClient,
    hooks: readonly PostgresAppendHook[],
    outcomes: GroupOutcome<AppendResult[]>[],
  ): Promise<GroupOutcome<AppendResult[]>[]> {
    for (let i = 0; i < outcomes.length; i++) {
      const outcome = outcomes[i]!;
      if (!outcome.ok) continue;
      const events = eventsOf(outcome.value);
      await client.query(`SAVEPOINT ${SAVEPOINT}`);
      try {
        for (const hook of hooks) await hook(events, client);
        await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      } catch (error) {
        // A statement without an answer is still running (its late reply would be taken for the
        // next statement's): no savepoint can help, the connection must go, and the group with it.
        if (isQueryTimeout(error)) throw error;
        await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
        await this.unappend(client, outcome.value);
        outcomes[i] = { ok: false, error };
      }
    }
    return outcomes;
  }

  /** Takes back one member's rows (written by `append_group` before its savepoint). */
  private async unappend(client: PoolClient, results: readonly AppendResult[]): Promise<void> {
    let first = Number.MAX_SAFE_INTEGER;
    let last = 0;
    for (const result of results) {
      if (result.events.length === 0) continue;
      first = Math.min(first, result.events[0]!.position);
      last = Math.max(last, result.position);
    }
    await client.query(this.sql.unappend, [
      results.map((r) => r.streamId),
      results.map((r) => r.version - r.events.length),
      last === 0 ? 0 : first,
      last,
    ]);
  }

  private committed(results: readonly AppendResult[]): void {
    if (this.notifier === undefined) return;
    let last = 0;
    for (const result of results) if (result.position > last) last = result.position;
    if (last > 0) this.notifier.committed(last);
  }
}

function settle<T>(promise: Promise<T>): Promise<GroupOutcome<T>> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}
