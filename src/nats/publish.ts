import { headers as natsHeaders } from '@nats-io/transport-node';
import { JetStreamApiError, type JetStreamClient, type PubAck } from '@nats-io/jetstream';
import { BatchTooLargeError } from '../errors.js';
import { COUNT_HEADER, PREV_HEADER, VERSION_HEADER } from './codec.js';

/** Room kept in a message for headers and the payload's frame, beyond the events' JSON. */
const HEADER_ALLOWANCE = 512;
const WRONG_LAST_SEQUENCE = 10071;

export type PublishExpectation = { lastSubjectSequence: number } | { lastSequence: number };

/** Acknowledged, or refused because the checked sequence is `lastSeq` (`ambiguous`: an earlier attempt went unanswered). */
export type PublishOutcome = { ack: PubAck } | { lastSeq: number; ambiguous: boolean };

export interface AppendMessage {
  readonly subject: string;
  readonly payload: string;
  readonly msgId: string;
  readonly expect: PublishExpectation;
  readonly prevSeq: number;
  readonly version: number;
  readonly count: number;
}

/** An append must be one message: refuses one the stream or server would not take, before publishing. */
export function assertFitsOneMessage(streamId: string, subject: string, payload: string, limit: number): void {
  const bytes = Buffer.byteLength(payload, 'utf8') + HEADER_ALLOWANCE + subject.length;
  if (bytes <= limit) return;
  throw new BatchTooLargeError(
    `Append to stream '${streamId}' takes about ${bytes} bytes as one message; the stream and server accept at most ` +
      `${limit}. An append is one JetStream message (that is what makes it atomic): split it into smaller appends, ` +
      `or raise the server's max_payload. Nothing was written.`,
    limit,
    bytes,
  );
}

/**
 * Publishes one append's message, retrying unanswered attempts (same `Nats-Msg-Id`, so the server
 * stores it once) through `retry`. A refusal of the expected sequence is an outcome, not an error.
 */
export async function publishAppend(
  js: JetStreamClient,
  retry: <T>(what: string, attempt: () => Promise<T>) => Promise<T>,
  timeoutMs: number,
  message: AppendMessage,
): Promise<PublishOutcome> {
  const h = natsHeaders();
  h.set(VERSION_HEADER, String(message.version));
  h.set(COUNT_HEADER, String(message.count));
  h.set(PREV_HEADER, String(message.prevSeq));
  let attempts = 0;
  try {
    const ack = await retry(`append to '${message.subject}'`, () => {
      attempts++;
      return js.publish(message.subject, message.payload, { msgID: message.msgId, expect: message.expect, headers: h, timeout: timeoutMs });
    });
    return { ack };
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === WRONG_LAST_SEQUENCE) {
      const match = /wrong last sequence: (\d+)/.exec(error.message);
      if (match !== null) return { lastSeq: Number(match[1]), ambiguous: attempts > 1 };
    }
    throw error;
  }
}
