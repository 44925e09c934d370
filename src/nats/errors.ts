import { EventfoldError } from '../errors.js';

/**
 * The JetStream stream (or KV bucket) exists with settings eventfold cannot work with: a retention
 * or limit that would drop events, other subjects, another replica count or storage. Nothing was
 * changed; fix the stream (or pick another name) and run `migrate()` again.
 */
export class NatsStreamConfigError extends EventfoldError {
  readonly code = 'NATS_STREAM_INCOMPATIBLE' as const;

  constructor(
    readonly stream: string,
    readonly problems: readonly string[],
  ) {
    super(
      `JetStream stream '${stream}' exists with settings eventfold cannot use: ${problems.join('; ')}. ` +
        `Nothing was changed. Fix the stream's settings or choose another stream name, then run migrate() again.`,
    );
  }
}

/** The JetStream stream does not exist: run `migrate()` (or `NatsEventStore.create`) first. */
export class NatsStreamMissingError extends EventfoldError {
  readonly code = 'NATS_STREAM_MISSING' as const;

  constructor(readonly stream: string) {
    super(`JetStream stream '${stream}' does not exist. Run store.migrate() (or NatsEventStore.create) once before use.`);
  }
}

/** A unique value (a user name, an e-mail address) is reserved by another owner. Nothing was written. */
export class UniqueValueTakenError extends EventfoldError {
  readonly code = 'UNIQUE_VALUE_TAKEN' as const;

  constructor(
    readonly scope: string,
    readonly value: string,
    readonly owner: string,
  ) {
    super(`The ${scope} '${value}' is already reserved by another owner. Choose another ${scope}.`);
  }
}
