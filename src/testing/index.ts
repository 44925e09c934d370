/**
 * `eventfold/testing`: the conformance suites every adapter runs — event stores
 * (`describeEventStoreConformance`), snapshot stores (`describeSnapshotStoreConformance`) and
 * projection runners (`describeProjectionConformance`) — and given/when/then helpers for
 * aggregates. Needs vitest (and fast-check for the suites' properties) as dev dependencies.
 */
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
// Upcaster assertions on stored fixtures.
export {
  assertUpcasts,
  recordedFixture,
  UpcastAssertionError,
  type StoredEventFixture,
  type UpcastCase,
} from './upcasting.js';
