import type { Pool } from 'pg';

/**
 * NOTIFY after commit, coalesced: at most one `pg_notify` statement in flight per store, carrying
 * the highest position committed so far. A notification is only a wake-up hint (listeners read
 * the log from their checkpoint and poll as a fallback), so one per burst is enough, and, sent
 * outside the append's transaction, it does not make commits queue for PostgreSQL's notify lock.
 */
export class AfterCommitNotifier {
  private pending = 0;
  private sent = 0;
  private inFlight: Promise<void> | undefined;

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
        const position = this.pending;
        await this.pool.query('SELECT pg_notify($1, $2)', [this.channel, String(position)]);
        this.sent = position;
      }
    } catch {
      // Best effort: a lost wake-up only delays listeners until their next poll.
      this.sent = this.pending;
    }
  }
}
