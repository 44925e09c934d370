/**
 * Where eventfold reports what it cannot throw to a caller: a dropped idle connection, a retried
 * transient fault, a failing subscriber. Any `{ debug, info, warn, error }` object fits (console,
 * pino, winston). The library never writes to the console on its own except through
 * `consoleLogger`, the default where a report would otherwise be lost.
 */
export interface Logger {
  debug(message: string, context?: Readonly<Record<string, unknown>>): void;
  info(message: string, context?: Readonly<Record<string, unknown>>): void;
  warn(message: string, context?: Readonly<Record<string, unknown>>): void;
  error(message: string, context?: Readonly<Record<string, unknown>>): void;
}

/** Discards everything. */
export const silentLogger: Logger = Object.freeze({
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
});

/** Warnings and errors to `console.warn`/`console.error`, prefixed `[eventfold]`; debug and info dropped. */
export const consoleLogger: Logger = Object.freeze({
  debug: () => {},
  info: () => {},
  warn: (message: string, context?: Readonly<Record<string, unknown>>) =>
    context === undefined ? console.warn(`[eventfold] ${message}`) : console.warn(`[eventfold] ${message}`, context),
  error: (message: string, context?: Readonly<Record<string, unknown>>) =>
    context === undefined ? console.error(`[eventfold] ${message}`) : console.error(`[eventfold] ${message}`, context),
});
