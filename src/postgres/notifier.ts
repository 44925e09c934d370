import type { Pool } from 'pg';

/** Named, so each pooled connection parses it once. */
const NOTIFY_SQL = 'SELECT pg_notify($1, $2)';

/**
 * Under sustained appends, notifications are at least this far apart. Each one is a transaction
 * of its own (with an xid and a commit record), so one per append would add up to a statement
 * per append; at most one per interval costs little and delays a listener by at most this much.
 */
export const NOTIFY_INTERVAL_MS = 5;

/**
 * NOTIFY after commit, coalesced: at most one `pg_notify` statement in flight per store, carrying
 * the highest position committed so far, and at most one per `NOTIFY_INTERVAL_MS` (the first
 * after a quiet spell goes out at once). A notification is only a wake-up hint (listeners read
 * the log from their checkpoint and poll as a fallback), so one per burst is enough, and, sent
 * outside the append's transaction, it does not make commits queue for PostgreSQL's notify lock.
 */
export class AfterCommitNotifier {
  private pending = 0;
  private sent = 0;
  private inFlight: Promise<void> | undefined;
  private lastSentAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly pool: Pool,
    private readonly channel: string,
  ) {}

  /** Records that `position` committed; a notification follows shortly. */
  committed(position: number): void {
    if (position > this.pending) this.pending = position;
    if (this.inFlight === undefined && this.pending > this.sent) {
      // Cleared asynchronously, after the assignment (drain may finish without awaiting).
      this.inFlight = this.drain().finally(() => {
        this.inFlight = undefined;
      });
    }
  }

  /** Resolves once every committed position has been notified (or the attempt failed). */
  async flush(): Promise<void> {
    while (this.inFlight !== undefined) await this.inFlight;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending > this.sent) {
        const wait = this.lastSentAt + NOTIFY_INTERVAL_MS - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        const position = this.pending;
        this.lastSentAt = performance.now();
        await this.pool.query({ name: 'eventfold_notify', text: NOTIFY_SQL, values: [this.channel, String(position)] });
        this.sent = position;
      }
    } catch {
      // Best effort: a lost wake-up only delays listeners until their next poll.
      this.sent = this.pending;
    }
  }
}
