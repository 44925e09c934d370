export * from './errors.js';
export { ENVELOPE_MARK, isEnvelope, type Envelope } from './cipher.js';
export { assertValidSubjectId, InMemoryKeyStore, KEY_BYTES, type KeyStore, type SubjectKey } from './key-store.js';
export {
  CryptoShreddingEventStore,
  definePersonalData,
  PERSONAL_PATHS_KEY,
  REDACTED_PATHS_KEY,
  type PersonalDataPolicy,
  type PersonalFields,
} from './crypto-shredding.js';
export { EncryptedSnapshotStore } from './encrypted-snapshots.js';
export { DerivedKeyStore, hmacKeyDerivation, type KeyDerivation } from './derived-key-store.js';
