// The projection conformance suite under node:test, from the installed package, on the in-memory
// runner: the accounts projection written in plain JavaScript, as a third-party adapter would.
import { describe, it } from 'node:test';
import {
  addInlineProjection,
  defineProjection,
  InMemoryCheckpointStore,
  InMemoryEventStore,
  InMemoryProjectionRunner,
  InMemoryReadModel,
} from 'eventfold';
import { describeProjectionConformance } from 'eventfold/testing';

function accountsProjection(options = {}) {
  const apply = (position, streamId, version, delta, { readModel }) => {
    if (options.failAt?.position === position && options.failAt.armed()) throw new Error(`boom at ${position}`);
    readModel.table('accounts').upsert(streamId, (row) => ({
      balance: (row?.balance ?? 0) + delta,
      events: (row?.events ?? 0) + 1,
      lastVersion: version,
    }));
    readModel.table('applied').upsert(String(position), (runners) => [...(runners ?? []), options.runnerId ?? '']);
  };
  return defineProjection({
    name: options.name ?? 'accounts',
    version: options.version ?? 1,
    ...(options.unknownEvents === undefined ? {} : { unknownEvents: options.unknownEvents }),
    handlers: {
      Deposited: (e, ctx) => apply(e.position, e.streamId, e.version, e.data.amount, ctx),
      Withdrawn: (e, ctx) => apply(e.position, e.streamId, e.version, -e.data.amount, ctx),
    },
    reset: ({ readModel }) => {
      readModel.table('accounts').clear();
      readModel.table('applied').clear();
    },
  });
}

function readAccounts(readModel) {
  const applied = [];
  for (const [position, runners] of readModel.table('applied').entries()) {
    for (const runner of runners) applied.push({ position: Number(position), runner });
  }
  applied.sort((a, b) => a.position - b.position || a.runner.localeCompare(b.runner));
  return { accounts: new Map(readModel.table('accounts').entries()), applied };
}

describeProjectionConformance(
  'InMemory under node:test',
  () => {
    const store = new InMemoryEventStore({ pageSize: 7 });
    const readModel = new InMemoryReadModel();
    const checkpoints = new InMemoryCheckpointStore();
    return {
      store,
      checkpoints,
      accounts: (options) => accountsProjection(options),
      runner: (projection, settings) => new InMemoryProjectionRunner(store, projection, { ...settings, readModel, checkpoints }),
      addInline: (projection) => addInlineProjection(store, projection, readModel),
      readModel: () => readAccounts(readModel),
      damage: () =>
        readModel.transaction((tx) => {
          tx.table('accounts').upsert('account-1', (row) => ({ balance: -1, events: row?.events ?? 0, lastVersion: row?.lastVersion ?? 0 }));
          tx.table('applied').set('999999', ['stray']);
        }),
      close: () => store.close(),
    };
  },
  { framework: { describe, it }, propertyRuns: 15 },
);
