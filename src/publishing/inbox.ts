import { InvalidArgumentError } from '../errors.js';

/**
 * The receiving side of at-least-once delivery: a consumer records each processed message id in
 * its own database, in the same transaction as the message's effect. A redelivered message finds
 * its id there and does nothing, so the effect happens exactly once. Adapters: `SqliteInbox`
 * (`eventfold/sqlite`), `PostgresInbox` (`eventfold/postgres`), `InMemoryInbox` here.
 */
export interface Inbox<Tx> {
  /**
   * Runs `work` for `messageId` unless `consumer` already processed it, in one transaction with
   * the record of it. Resolves `'processed'` after the commit, or `'duplicate'` when the id was
   * there already (work not run). Acknowledge the broker's message after this resolves.
   */
  handle(consumer: string, messageId: string, work: (tx: Tx) => unknown): Promise<InboxOutcome>;
}

export type InboxOutcome = 'processed' | 'duplicate';

const NAME = /^[A-Za-z0-9_.:-]{1,200}$/;

/** Consumer names and message ids are keys in a table and appear in logs: keep them plain. */
export function assertInboxKey(kind: 'consumer' | 'message id', value: unknown): asserts value is string {
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw new InvalidArgumentError(`Invalid inbox ${kind} ${JSON.stringify(value)}: use 1-200 letters, digits, '_', '.', ':' or '-'.`);
  }
}

/**
 * For tests and single-process consumers: the record lives in memory with the work's effect. A
 * delivery of an id whose first delivery is still running waits for it, as a database's unique
 * key would: if the first fails, the second runs the work.
 */
export class InMemoryInbox implements Inbox<void> {
  private readonly done = new Map<string, Set<string>>();
  private readonly running = new Map<string, Promise<unknown>>();

  async handle(consumer: string, messageId: string, work: () => unknown): Promise<InboxOutcome> {
    assertInboxKey('consumer', consumer);
    assertInboxKey('message id', messageId);
    const key = `${consumer}\u0000${messageId}`;
    for (let inFlight = this.running.get(key); inFlight !== undefined; inFlight = this.running.get(key)) {
      await inFlight.catch(() => undefined);
    }
    let ids = this.done.get(consumer);
    if (ids === undefined) this.done.set(consumer, (ids = new Set()));
    if (ids.has(messageId)) return 'duplicate';
    const attempt = Promise.resolve().then(work);
    this.running.set(key, attempt);
    try {
      await attempt;
      ids.add(messageId);
      return 'processed';
    } finally {
      this.running.delete(key);
    }
  }
}
