/**
 * Transient-error classification lives in the core (src/errors.ts), next to the `transient` flag
 * of the errors it reads; the consumer loop and its users import it from here.
 */
export { isTransientError, type TransientErrorClassifier } from '../errors.js';
