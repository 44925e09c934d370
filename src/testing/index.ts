/**
 * `eventfold/testing`: the conformance suite every EventStore adapter runs, and given/when/then
 * helpers for aggregates. Needs vitest (and fast-check for the suite's properties) as dev dependencies.
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
