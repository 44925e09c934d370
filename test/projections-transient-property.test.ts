// Property: whatever transient faults hit a runner — reading the head or the log, reading the
// checkpoint, taking the lock, committing (before the commit, or after it, so the runner does not
// learn that it committed) — it ends with the read model equal to the fold of the log, each event
// applied exactly once, a poison event parked exactly once, and reports every fault as transient.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../src/errors.js';
import type { RecordedEvent } from '../src/events/types.js';
import { InMemoryProjectionLock, InMemoryProjectionTarget, type InMemoryProjectionContext } from '../src/projections/in-memory.js';
import { InMemoryReadModel } from '../src/projections/in-memory-read-model.js';
import { ProjectionRunner, type ProjectionErrorInfo } from '../src/projections/runner.js';
import type { ProjectionLock, ProjectionTarget } from '../src/projections/target.js';
import type { EventStore } from '../src/store/event-store.js';
import { PagedEventStream } from '../src/store/event-stream.js';
import { InMemoryEventStore } from '../src/store/in-memory-event-store.js';
import { memoryAccountsProjection, readMemoryAccounts } from './fixtures/projection-memory-accounts.js';
import { foldAccounts, planEvents } from './fixtures/projection-model.js';

/** Decides, call by call, whether to inject a fault: the generated schedule, then never again. */
class Faults {
  private index = 0;
  injected = 0;
  constructor(private readonly schedule: readonly boolean[]) {}
  next(where: string): void {
    if (this.schedule[this.index++] === true) {
      this.injected++;
      throw new StoreUnavailableError(`injected fault while trying to ${where}`);
    }
  }
}

function faultyStore(inner: InMemoryEventStore, faults: Faults): EventStore {
  return new Proxy(inner, {
    get(target, key, receiver) {
      if (key === 'headPosition') {
        return async () => {
          faults.next('read the head position');
          return target.headPosition();
        };
      }
      if (key === 'readAll') {
        return (options?: Parameters<EventStore['readAll']>[0]) =>
          new PagedEventStream<RecordedEvent>(async function* () {
            for await (const page of target.readAll(options).pages()) {
              faults.next('read the event log');
              yield page;
            }
          });
      }
      return Reflect.get(target, key, receiver) as unknown;
    },
  }) as EventStore;
}

function faultyTarget(inner: InMemoryProjectionTarget, faults: Faults): ProjectionTarget<InMemoryProjectionContext> {
  return {
    delivery: inner.delivery,
    synchronous: inner.synchronous,
    deadLetters: inner.deadLetters,
    prepare: async () => {
      faults.next('create the tables');
      await inner.prepare();
    },
    readCheckpoint: async (projection) => {
      faults.next('read the checkpoint');
      return inner.readCheckpoint(projection);
    },
    commit: async (projection, expected, next, work, deadLetter) => {
      faults.next('begin a commit');
      await inner.commit(projection, expected, next, work, deadLetter);
      // The commit happened, but the connection dropped before the runner heard of it.
      faults.next('hear back from a commit');
    },
  };
}

function faultyLock(inner: ProjectionLock, faults: Faults): ProjectionLock {
  return {
    tryAcquire: async (projection, owner) => {
      faults.next('take the lock');
      return inner.tryAcquire(projection, owner);
    },
  };
}

describe('ProjectionRunner under random transient faults', () => {
  it('property: the read model ends as the fold of the log, each event applied once, every fault reported as transient', async () => {
    const eventArb = fc.record({
      stream: fc.integer({ min: 0, max: 3 }),
      kind: fc.constantFrom(0 as const, 1 as const, 2 as const),
      amount: fc.integer({ min: 1, max: 100 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(eventArb, { minLength: 1, maxLength: 60 }),
        fc.array(fc.boolean(), { maxLength: 80 }),
        fc.integer({ min: 1, max: 16 }),
        fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }),
        async (kinds, schedule, batchSize, poison) => {
          const inner = new InMemoryEventStore();
          for (const plan of planEvents(kinds)) await inner.append(plan.streamId, plan.events, { expectedVersion: 'any' });
          const faults = new Faults(schedule);
          const readModel = new InMemoryReadModel();
          const errors: { error: Error; info: ProjectionErrorInfo }[] = [];
          const runner = new ProjectionRunner({
            store: faultyStore(inner, faults),
            // A poison event (when its type has a handler) is parked; the faults must not change that.
            projection: memoryAccountsProjection(poison === undefined ? {} : { failAt: { position: poison, armed: () => true } }),
            poisonEvents: 'park',
            target: faultyTarget(new InMemoryProjectionTarget(readModel), faults),
            lock: faultyLock(new InMemoryProjectionLock(), faults),
            batchSize,
            pollIntervalMs: 5,
            lockRetryMs: 1,
            retry: { maxAttempts: 2, initialDelayMs: 0, maxDelayMs: 0 },
            onError: (error, info) => errors.push({ error, info }),
          });
          await runner.start();
          // Waits on the real store: the runner's own waitUntilCaughtUp would meet the injected faults.
          const head = await inner.headPosition();
          const deadline = Date.now() + 20_000;
          while ((runner.checkpoint?.position ?? 0) < head || runner.state !== 'live') {
            if (Date.now() > deadline) throw new Error(`not caught up: ${JSON.stringify(runner.status)}`);
            await new Promise((resolve) => setTimeout(resolve, 2));
          }
          await runner.stop();
          expect(runner.state).toBe('stopped');
          const log = await inner.readAll().toArray();
          const parked = log.filter((e) => e.position === poison && e.type !== 'Noted').map((e) => e.position);
          const expected = foldAccounts(log.filter((e) => !parked.includes(e.position)));
          const actual = readMemoryAccounts(readModel);
          expect(new Map(actual.accounts)).toEqual(expected.accounts);
          expect(actual.applied.map((row) => row.position)).toEqual(expected.applied);
          expect((await runner.deadLetters!.list('accounts')).map((l) => l.position)).toEqual(parked);
          expect(errors.length).toBeGreaterThanOrEqual(Math.min(1, faults.injected));
          expect(errors.filter((e) => e.info.transient).every((e) => e.info.willRetry && e.error.message.includes('injected'))).toBe(true);
          // Handler failures: only the poison event's, never a fault taken for one.
          expect(errors.filter((e) => !e.info.transient).every((e) => e.error.message.includes(`boom at ${poison}`))).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });
});
