import { LOCK_CLASS } from './schema-name.js';

/**
 * The PL/pgSQL block that draws `count` positions for a multi-event append (`append_events`,
 * `append_group`) into `v_first`, with the transaction's xid into `v_xid`, under the session-level
 * position lock (see the gap-safety comment in ddl.ts). The lock is taken, used and released
 * inside one guarded block, so a failure or a cancel at any point after it was granted (even
 * between two statements) releases it: a session lock outlives the transaction, and a leaked one
 * would stop every appender of the schema until the connection closed. `s` is the quoted schema,
 * `key` its lock key; the caller declares `v_first bigint`, `v_xid xid8` and `v_void text`.
 */
export function drawPositionsSql(s: string, key: number, count: string, indent: string): string {
  const lock = `${LOCK_CLASS.position}, ${key}`;
  return `BEGIN
  -- Left to right: the lock, then the xid, then the sequence.
  SELECT pg_advisory_lock(${lock}), pg_current_xact_id(), nextval('${s}.events_position_seq') INTO v_void, v_xid, v_first;
  IF ${count} > 1 THEN
    PERFORM setval('${s}.events_position_seq', v_first + ${count} - 1);
  END IF;
  PERFORM pg_advisory_unlock(${lock});
EXCEPTION WHEN OTHERS OR query_canceled THEN
  IF EXISTS (SELECT 1 FROM pg_locks l
              WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted
                AND l.classid = ${LOCK_CLASS.position} AND l.objid = ${key} AND l.objsubid = 2) THEN
    PERFORM pg_advisory_unlock(${lock});
  END IF;
  RAISE;
END;`
    .split('\n')
    .map((line) => indent + line)
    .join('\n');
}
