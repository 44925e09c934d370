/**
 * `eventfold/testing`: given/when/then helpers for aggregates, and the conformance suites every
 * adapter runs — event stores (`describeEventStoreConformance`), snapshot stores
 * (`describeSnapshotStoreConformance`) and projection runners (`describeProjectionConformance`).
 * Loading it needs nothing but eventfold: given/when/then work under any test runner; the suites
 * take the runner's `describe` and `it` (vitest, node:test, …) and load fast-check, which their
 * property tests need, only when those run.
 */
export type { ConformanceSuiteOptions, TestFramework } from './framework.js';
export {
  describeEventStoreConformance,
  type EventStoreConformanceOptions,
  type EventStoreFactory,
} from './conformance.js';
export {
  describeSnapshotStoreConformance,
  type SnapshotStoreConformanceOptions,
  type SnapshotStoreFactory,
  type SnapshotStoreFixture,
} from './snapshot-conformance.js';
export {
  given,
  Given,
  ScenarioAssertionError,
  type AsyncScenario,
  type ExpectedEvent,
  type GivenOptions,
  type Scenario,
} from './given-when-then.js';
export {
  describeProjectionConformance,
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
} from './projection-conformance.js';
