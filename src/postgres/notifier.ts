import type { Pool } from 'pg';
import { backoffDelayMs, type BackoffPolicy } from '../backoff.js';
import type { Logger } from '../logging.js';

/** Named, so each pooled connection parses it once. */
const NOTIFY_SQL = 'SELECT pg_notify($1, $2)';

/**
 * Under sustained appends, notifications are at least this far apart. Each one is a transaction
 * of its own (with an xid and a commit record), so one per append would add up to a statement
 * per append; at most one per interval costs little and delays a listener by at most this much.
 */
export const NOTIFY_INTERVAL_MS = 5;

/**
 * Retries of a failed NOTIFY: about 2.5 s in all before giving up. Longer is pointless: by then
 * every listener has polled (runners poll every `pollIntervalMs`, default 1 s).
 */
export const NOTIFY_RETRY: BackoffPolicy = Object.freeze({ initialDelayMs: 25, maxDelayMs: 1_000, factor: 2, jitter: 0.5 });
export const NOTIFY_ATTEMPTS = 8;

/**
 * NOTIFY after commit, coalesced: at most one `pg_notify` statement in flight per store, carrying
 * the highest position committed so far, and at most one per `NOTIFY_INTERVAL_MS` (the first
 * after a quiet spell goes out at once). A notification is only a wake-up hint (listeners read
 * the log from their checkpoint and poll as a fallback), so one per burst is enough, and, sent
 * outside the append's transaction, it does not make commits queue for PostgreSQL's notify lock.
 *
 * A failed NOTIFY (connection dropped, server unreachable) is reported to `logger` as a warning and
 * retried with backoff (`NOTIFY_RETRY`, up to `NOTIFY_ATTEMPTS` attempts, always carrying the
 * highest committed position), so listeners are still woken once the server answers again. After
 * the last attempt it is reported as an error and dropped: listeners then see the events at their
 * next poll — later, never lost.
 */
export class AfterCommitNotifier {
  private pending = 0;
  private sent = 0;
  private inFlight: Promise<void> | undefined;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private closing = false;
  private wakeRetry: (() => void) | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly channel: string,
    private readonly logger: Logger,
  ) {}

  /** Records that `position` committed; a notification follows shortly. */
  committed(position: number): void {
    if (position > this.pending) this.pending = position;
    this.start();
  }

  private start(): void {
    if (this.inFlight !== undefined || this.pending <= this.sent || this.closing) return;
    // Cleared asynchronously, after the assignment (drain may finish without awaiting). A position
    // committed between the end of drain and this callback found inFlight still set: send it now.
    this.inFlight = this.drain().finally(() => {
      this.inFlight = undefined;
      this.start();
    });
  }

  /** Resolves once every committed position has been notified (or the attempt failed). */
  async flush(): Promise<void> {
    while (this.inFlight !== undefined) await this.inFlight;
  }

  /** Sends what is pending once more if a NOTIFY is under way, without further retries; then stops. */
  async close(): Promise<void> {
    this.closing = true;
    this.wakeRetry?.();
    await this.flush();
  }

  private async drain(): Promise<void> {
    let failures = 0;
    while (this.pending > this.sent) {
      const wait = this.lastSentAt + NOTIFY_INTERVAL_MS - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const position = this.pending;
      this.lastSentAt = performance.now();
      try {
        await this.pool.query({ name: 'eventfold_notify', text: NOTIFY_SQL, values: [this.channel, String(position)] });
        this.sent = position;
        if (failures > 0) this.logger.info(`PostgreSQL NOTIFY on ${this.channel} delivered after ${failures + 1} attempts.`, { position });
        failures = 0;
      } catch (error) {
        failures++;
        const context = { channel: this.channel, position, attempt: failures, error: describe(error) };
        if (this.closing || failures >= NOTIFY_ATTEMPTS) {
          this.logger.error(
            `PostgreSQL NOTIFY on ${this.channel} failed ${failures} time(s); giving up: listeners see the events at their next poll.`,
            context,
          );
          this.sent = this.pending;
          return;
        }
        const delayMs = Math.round(backoffDelayMs(NOTIFY_RETRY, failures));
        this.logger.warn(`PostgreSQL NOTIFY on ${this.channel} failed; retrying in ${delayMs} ms.`, { ...context, delayMs });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delayMs);
          this.wakeRetry = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wakeRetry = undefined;
      }
    }
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? `${error.message} [${code}]` : error.message;
}
