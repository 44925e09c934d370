import { EventfoldError } from '../errors.js';

/**
 * Encrypted personal data names a data subject whose key the key store does not know at all (not
 * even as forgotten): the key store is lost, wrong or restored from an older backup. Nothing is
 * decrypted with a guess; restore the right key store. The message never contains key material.
 */
export class EncryptionKeyMissingError extends EventfoldError {
  readonly code = 'ENCRYPTION_KEY_MISSING' as const;

  constructor(readonly subjectId: string) {
    super(
      `No encryption key for data subject '${subjectId}' in the key store, and the subject was not forgotten: ` +
        `the key store is missing, wrong or older than the events. Point the store at the right key store.`,
    );
  }
}

/** A value did not decrypt with its subject's key (tampered data or a mismatched key store). */
export class DecryptionFailedError extends EventfoldError {
  readonly code = 'DECRYPTION_FAILED' as const;

  constructor(
    readonly subjectId: string,
    readonly path: string,
  ) {
    super(
      `Personal data at '${path}' of data subject '${subjectId}' failed to decrypt: the data was altered or the key ` +
        `store does not belong to this event store.`,
    );
  }
}

/** New personal data for a data subject that was forgotten: refused, nothing was written. */
export class SubjectForgottenError extends EventfoldError {
  readonly code = 'SUBJECT_FORGOTTEN' as const;

  constructor(readonly subjectId: string) {
    super(`Data subject '${subjectId}' was forgotten; personal data for it cannot be stored again. Nothing was written.`);
  }
}
