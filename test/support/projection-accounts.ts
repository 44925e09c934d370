// Helpers of the projection runner tests on the accounts model (see fixtures/projection-model.ts):
// seed a log, record a runner's reported errors, check the read model against the fold of the log.
import { expect } from 'vitest';
import type { EventStore } from '../../src/index.js';
import type { ProjectionErrorInfo } from '../../src/projections/index.js';
import { foldAccounts, type AccountsReadModel } from '../fixtures/projection-model.js';

/**
 * Appends `count` events (deposits, withdrawals and unhandled notes) over `streams` account
 * streams, `perAppend` events per `appendMany` (one entry per stream).
 */
export async function seedAccounts(store: EventStore, count: number, options: { streams?: number; perAppend?: number } = {}): Promise<void> {
  const streams = options.streams ?? 4;
  const perAppend = options.perAppend ?? 40;
  for (let i = 0; i < count; i += perAppend) {
    const byStream = new Map<string, { type: string; data: unknown }[]>();
    for (let j = i; j < Math.min(i + perAppend, count); j++) {
      const streamId = `account-${j % streams}`;
      const type = j % 5 === 4 ? 'Withdrawn' : j % 7 === 6 ? 'Noted' : 'Deposited';
      byStream.set(streamId, [...(byStream.get(streamId) ?? []), { type, data: { amount: j + 1, text: 'x' } }]);
    }
    await store.appendMany([...byStream].map(([streamId, events]) => ({ streamId, events, expectedVersion: 'any' as const })));
  }
}

/** The read model equals the fold of the whole log: each handled event applied exactly once, none skipped. */
export async function expectFoldedAccounts(store: EventStore, readModel: () => AccountsReadModel | Promise<AccountsReadModel>): Promise<void> {
  const expected = foldAccounts(await store.readAll().toArray());
  const actual = await readModel();
  expect(actual.accounts).toEqual(expected.accounts);
  expect(actual.applied.map((row) => row.position)).toEqual(expected.applied);
}

export interface ErrorRecorder {
  readonly errors: { readonly message: string; readonly info: ProjectionErrorInfo }[];
  readonly onError: (error: Error, info: ProjectionErrorInfo) => void;
}

/** An `onError` for a runner that keeps what it was told. */
export function errorRecorder(): ErrorRecorder {
  const errors: ErrorRecorder['errors'][number][] = [];
  return { errors, onError: (error, info) => errors.push({ message: error.message, info }) };
}
