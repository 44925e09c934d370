import type { MsgHdrs } from '@nats-io/transport-node';

/**
 * Pruning on NATS (see `NatsStreamPruning`): a message whose events are pruned is securely erased
 * from the JetStream stream, after its rewrite (the same headers; pruned events as `$Pruned`
 * placeholders, kept events as they were) is published on `<prefix>.r.<sequence>`. Readers that
 * meet an erased sequence read its rewrite there, at the original sequence, so versions stay
 * contiguous and positions stay where they were.
 */

/** A stored message, or the rewrite standing in for an erased one (then `seq` is the original's). */
export interface RawMessage {
  readonly seq: number;
  readonly header: MsgHdrs | undefined;
  readonly data: Uint8Array;
}

/** `<prefix>.r.<seq>` from the store's event subjects `<prefix>.s.*`. */
export function rewriteSubjectOf(eventSubjects: string, seq: number): string {
  return `${eventSubjects.slice(0, -'.s.*'.length)}.r.${seq}`;
}

/** The sequence a rewrite message stands for (its subject's last token). */
export function originalSequenceOf(subject: string): number {
  return Number(subject.slice(subject.lastIndexOf('.') + 1));
}
