import type { ProjectionRunner } from '../projections/runner.js';
import { registrar } from './framework.js';
import { describeCoordinationCases } from './projection-cases-coordination.js';
import { describeDeadLetterCases } from './projection-cases-dead-letters.js';
import { describeFailureCases } from './projection-cases-failures.js';
import { describeLiveCases } from './projection-cases-live.js';
import { describePropertyCases } from './projection-cases-property.js';
import { describeStoredErrorCases } from './projection-cases-errors.js';
import type { ProjectionSuite, SuiteFixture } from './projection-context.js';
import type {
  AccountEvent,
  ProjectionConformanceFactory,
  ProjectionConformanceFixture,
  ProjectionConformanceOptions,
} from './projection-model.js';

export {
  foldAccounts,
  planEvents,
  type AccountDeposited,
  type AccountEvent,
  type AccountNoted,
  type AccountRow,
  type AccountsFold,
  type AccountsProjectionOptions,
  type AccountsReadModel,
  type AccountWithdrawn,
  type AppliedRow,
  type PlannedAppend,
  type ProjectionConformanceFactory,
  type ProjectionConformanceFixture,
  type ProjectionConformanceOptions,
} from './projection-model.js';

/** The blocks of the suite, in order. A new block is a `(suite) => void` in its own file, added here. */
const BLOCKS: readonly (<Ctx>(suite: ProjectionSuite<Ctx>) => void)[] = [
  describeLiveCases,
  describeFailureCases,
  describeCoordinationCases,
  describePropertyCases,
  describeDeadLetterCases,
  describeStoredErrorCases,
];

/**
 * The conformance suite of projections, run against every adapter (the in-memory one included)
 * with the same "accounts" read model: inline projections commit and fail with the append;
 * async runners catch up and tail live appends (woken by the adapter, not by polling), resume from
 * their checkpoint, stop on a failing handler naming the event with the checkpoint just before it,
 * skip or fail on unknown events, rebuild with progress (also on a version bump), let one runner
 * at a time process a projection, refuse a stale checkpoint, and — a fast-check property — end
 * with the read model equal to the fold, each event applied once, whatever crashes happened.
 * The suite seeds with multi-stream `appendMany` where the store offers it (one `append` per stream
 * where it does not), takes positions from the log (a store may leave gaps between them), and
 * leaves out the inline case for a store that declares `inline: false`.
 */
export function describeProjectionConformance<Ctx>(
  name: string,
  createFixture: ProjectionConformanceFactory<Ctx>,
  options: ProjectionConformanceOptions,
): void {
  const register = registrar('describeProjectionConformance', options);

  register.describe(`${name} — projection conformance`, () => {
    const open: { fixture: ProjectionConformanceFixture<Ctx>; runners: ProjectionRunner<AccountEvent, Ctx>[] }[] = [];

    const fresh = async (): Promise<SuiteFixture<Ctx>> => {
      const fixture = await createFixture();
      const entry = { fixture, runners: [] as ProjectionRunner<AccountEvent, Ctx>[] };
      open.push(entry);
      return {
        ...fixture,
        accounts: (o) => fixture.accounts(o),
        addInline: (p) => {
          if (fixture.addInline === undefined) throw new Error(`${name}: the fixture has no addInline, yet the suite was not told inline: false.`);
          return fixture.addInline(p);
        },
        readModel: () => fixture.readModel(),
        damage: () => fixture.damage(),
        close: () => fixture.close(),
        runner: (projection, settings) => {
          const runner = fixture.runner(projection, settings);
          entry.runners.push(runner);
          return runner;
        },
      };
    };
    const release = async (fixture: ProjectionConformanceFixture<Ctx>): Promise<void> => {
      const index = open.findIndex((entry) => entry.fixture.store === fixture.store);
      const [entry] = index >= 0 ? open.splice(index, 1) : [];
      if (entry === undefined) return;
      for (const runner of entry.runners) await runner.stop().catch(() => undefined);
      await entry.fixture.close();
    };
    const releasing =
      (body: () => Promise<void>) =>
      async (): Promise<void> => {
        try {
          await body();
        } finally {
          for (const entry of [...open]) await release(entry.fixture);
        }
      };

    const suite: ProjectionSuite<Ctx> = {
      describe: register.describe,
      test: (testName, body) => register.test(testName, releasing(body)),
      slowTest: (testName, body) => register.slowTest(testName, releasing(body)),
      fresh,
      release,
      timeoutMs: options.timeoutMs ?? 20_000,
      wakeUpSettleMs: options.wakeUpSettleMs,
      propertyRuns: options.propertyRuns ?? 25,
      inline: options.inline ?? true,
    };
    for (const block of BLOCKS) block(suite);
  });
}
