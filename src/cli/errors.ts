import { EventfoldError } from '../errors.js';

/** Exit codes of the `eventfold` command; documented in docs/cli.md. */
export const EXIT = Object.freeze({
  ok: 0,
  /** The store, a driver or the user's code failed. */
  failure: 1,
  /** Bad command line or configuration. */
  usage: 2,
  /** The stream or projection named does not exist. */
  notFound: 3,
  /** A projection runner holds the projection: stop it first. */
  locked: 4,
});

/** The command line or the configuration file is wrong. */
export class CliUsageError extends EventfoldError {
  readonly code = 'CLI_USAGE' as const;
}

/** The driver package a store needs is not installed (they are optional peer dependencies). */
export class DriverMissingError extends EventfoldError {
  readonly code = 'DRIVER_MISSING' as const;

  constructor(
    readonly packageName: string,
    what: string,
    options?: { cause?: unknown },
  ) {
    super(`${what} needs the '${packageName}' package, which is not installed. Install it with: npm install ${packageName}`, options);
  }
}

/** A named projection is neither in the configuration nor in the store. */
export class ProjectionNotFoundError extends EventfoldError {
  readonly code = 'PROJECTION_NOT_FOUND' as const;
}
