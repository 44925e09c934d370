import { groupCommitSql } from './ddl-group.js';
import { drawPositionsSql } from './ddl-positions.js';
import { LOG_COLUMNS } from './rows.js';
import { assertValidSchemaName, LOCK_CLASS, notifyChannel, quoteIdentifier, schemaLockKey, streamLockClasses } from './schema-name.js';

/** Stream-lock buckets: an appendMany over more than MANY_STREAMS streams locks buckets, not streams. */
const BUCKETS = 64;
const MANY_STREAMS = 32;

/** Version of the table layout `migrate()` creates; recorded in `<schema>.eventfold_schema`. */
export const POSTGRES_SCHEMA_VERSION = 3;

/**
 * The DDL `migrate()` runs (inside one transaction, under an advisory lock, so concurrent
 * migrations wait for each other). Every statement is idempotent. `postgresSchemaSql('eventfold')`
 * gives the default; the schema name is validated and quoted.
 *
 * Layout:
 * - `streams`: one row per stream id, written once, when the stream's first events are (the list
 *   the catalog walks). A stream's version is its highest event version, read from the
 *   `(stream_id, version)` index: event rows are never deleted (pruning rewrites them in place), so
 *   it cannot go back. Appenders hold a per-stream advisory lock from the version check to commit,
 *   so `expectedVersion` is enforced inside SQL with no read-then-write race, and a stream's
 *   positions grow with its versions. (Layout 2 kept the version in `streams` too, which cost
 *   every append a second row write; layout 3 drops that column.)
 * - `events`: the log. `position` comes from `events_position_seq`; `transaction_id` is the
 *   writing transaction's xid, which readers compare with their snapshot (see `log_horizon`).
 *   `data`/`metadata` are `json` (text kept exactly as written, key order included).
 * - `snapshots`: one row per (stream, version) for `PostgresSnapshotStore`.
 * - `append_events(...)`: the whole append in one round trip (checks, positions, rows, NOTIFY);
 *   `append_event(...)`: the same for the common case of one event to one stream, leaner;
 *   `append_group(...)`: several appends in one transaction for group commit (see ddl-group.ts).
 * - `read_log(from, limit)` / `log_head()`: readAll's page and headPosition, gap-safe (see the
 *   comment above `log_watch` for how).
 *
 * Gap safety and what it costs. Appenders draw positions (and take their xid) inside a
 * session advisory lock held for microseconds, so xid order equals position order; readers hand
 * out only events whose xid is below the oldest xid that may still belong to a running appender.
 * - Writers: one extra lock round inside the append function; appends never wait for readers.
 * - Readers: an append that has drawn positions but not yet committed (a slow append hook, a
 *   row-lock wait, a stalled client inside `withTransaction`-style hooks) holds back readAll and
 *   headPosition at its positions until it commits or rolls back. Transactions that are not
 *   appenders of this schema do not hold readers back (except one that took its xid in the
 *   instant between a reader's two steps), and a reader inside a REPEATABLE READ or SERIALIZABLE
 *   transaction falls back to the snapshot's xmin, which any running transaction holds back.
 * - Each readAll page reads pg_locks when transactions are running (cheap, sub-millisecond).
 */
export function postgresSchemaSql(schema: string): string {
  assertValidSchemaName(schema);
  const s = quoteIdentifier(schema);
  const key = schemaLockKey(schema);
  const channel = notifyChannel(schema);
  const { stream: streamClass, bucket: bucketClass } = streamLockClasses(schema);
  return `
CREATE SCHEMA IF NOT EXISTS ${s};

CREATE TABLE IF NOT EXISTS ${s}.eventfold_schema (
  version    integer PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS ${s}.streams (
  stream_id text PRIMARY KEY
);
-- Layout 2 -> 3: a stream's version lives in its events alone (an older eventfold reading it
-- from here then fails loudly). Looked up first, so a migrate() with nothing to do takes no lock.
DO $do$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_attribute
              WHERE attrelid = '${s}.streams'::regclass AND attname = 'version' AND NOT attisdropped) THEN
    ALTER TABLE ${s}.streams DROP COLUMN version;
  END IF;
END
$do$;

CREATE SEQUENCE IF NOT EXISTS ${s}.events_position_seq AS bigint;

CREATE TABLE IF NOT EXISTS ${s}.events (
  position       bigint      PRIMARY KEY,
  stream_id      text        NOT NULL,
  version        bigint      NOT NULL,
  event_id       uuid        NOT NULL,
  type           text        NOT NULL,
  data           json        NOT NULL,
  metadata       json        NOT NULL,
  recorded_at    timestamptz NOT NULL,
  transaction_id xid8        NOT NULL,
  CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
);

CREATE TABLE IF NOT EXISTS ${s}.snapshots (
  stream_id      text        NOT NULL,
  version        bigint      NOT NULL,
  schema_version bigint      NOT NULL,
  state          json        NOT NULL,
  taken_at       timestamptz NOT NULL,
  PRIMARY KEY (stream_id, version)
);

-- Appends to one or more streams atomically, in one round trip.
-- p_expected: a version >= 0 (0 = 'no-stream'), -1 = 'any', -2 = 'stream-exists'.
-- Events of stream i are contiguous in the per-event arrays and follow those of stream i-1;
-- p_event_streams[k] names the stream (1-based) of event k; p_data and p_metadata are JSON arrays
-- with one element per event. p_notify: send NOTIFY eventfold_<schema> (payload: the last
-- position) in this transaction. Returns one row per stream, in input order.
-- A failed check raises SQLSTATE EF001 with DETAIL '<stream index>:<actual version>'.
CREATE OR REPLACE FUNCTION ${s}.append_events(
  p_stream_ids    text[],
  p_expected      bigint[],
  p_counts        integer[],
  p_event_streams integer[],
  p_event_ids     uuid[],
  p_types         text[],
  p_data          json,
  p_metadata      json,
  p_recorded_at   timestamptz,
  p_notify        boolean
) RETURNS TABLE (stream_version bigint, first_position bigint)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  n_streams integer := coalesce(cardinality(p_stream_ids), 0);
  n_events  integer := coalesce(cardinality(p_types), 0);
  v_first   bigint := 0;
  v_xid     xid8;
  v_void    text;
  v_key     integer;
  v_actual  bigint;
  v_old     bigint[] := '{}';
  v_start   integer[] := '{}';
  v_offset  integer := 0;
  v_exp     bigint;
BEGIN
  -- 1. Lock the streams: one exclusive advisory lock per stream (a hash of its id) under a shared
  -- lock on its bucket; an appendMany over many streams locks whole buckets instead, so it never
  -- needs more than ${BUCKETS} locks. Advisory locks, unlike row locks, give the transaction no xid
  -- yet (see 3). Ascending key order everywhere, so appenders cannot deadlock.
  IF n_streams = 1 THEN
    v_key := hashtext(p_stream_ids[1]);
    -- One statement, evaluated left to right: bucket first, then stream.
    PERFORM pg_advisory_xact_lock_shared(${bucketClass}, v_key & ${BUCKETS - 1}), pg_advisory_xact_lock(${streamClass}, v_key);
  ELSIF n_streams <= ${MANY_STREAMS} THEN
    FOR v_key IN SELECT DISTINCT hashtext(x) & ${BUCKETS - 1} FROM unnest(p_stream_ids) AS x ORDER BY 1 LOOP
      PERFORM pg_advisory_xact_lock_shared(${bucketClass}, v_key);
    END LOOP;
    FOR v_key IN SELECT DISTINCT hashtext(x) FROM unnest(p_stream_ids) AS x ORDER BY 1 LOOP
      PERFORM pg_advisory_xact_lock(${streamClass}, v_key);
    END LOOP;
  ELSE
    FOR v_key IN SELECT DISTINCT hashtext(x) & ${BUCKETS - 1} FROM unnest(p_stream_ids) AS x ORDER BY 1 LOOP
      PERFORM pg_advisory_xact_lock(${bucketClass}, v_key);
    END LOOP;
  END IF;

  -- 2. Check every expected version against the committed version, which cannot move while the
  -- locks are held. A mismatch fails before any position is drawn or anything is written.
  FOR i IN 1..n_streams LOOP
    v_exp := p_expected[i];
    SELECT max(e.version) INTO v_actual FROM ${s}.events e WHERE e.stream_id = p_stream_ids[i];
    v_actual := coalesce(v_actual, 0);
    IF (v_exp = -2 AND v_actual = 0) OR (v_exp >= 0 AND v_actual <> v_exp) THEN
      RAISE EXCEPTION USING ERRCODE = 'EF001', MESSAGE = 'eventfold: expected version mismatch',
        DETAIL = i || ':' || v_actual;
    END IF;
    v_old[i] := v_actual;
    v_start[i] := v_offset;
    v_offset := v_offset + p_counts[i];
  END LOOP;

  IF n_events > 0 THEN
    -- 3. Gap safety. Mark this transaction as an appender until it ends (readers look for the
    -- shared lock), then, under a session lock held for microseconds, assign its xid and draw its
    -- positions in one step: xid order equals position order across appenders.
    PERFORM pg_advisory_xact_lock_shared(${LOCK_CLASS.writer}, ${key});
${drawPositionsSql(s, key, 'n_events', '    ')}

    -- 4. Write: new streams, events, and the wake-up for LISTENers (delivered at commit; note
    -- that a transaction that notifies holds a cluster-wide lock from pre-commit to the end of
    -- its commit, so notifying transactions commit one at a time).
    FOR i IN 1..n_streams LOOP
      IF v_old[i] = 0 AND p_counts[i] > 0 THEN
        INSERT INTO ${s}.streams (stream_id) VALUES (p_stream_ids[i]);
      END IF;
    END LOOP;
    INSERT INTO ${s}.events
      (position, stream_id, version, event_id, type, data, metadata, recorded_at, transaction_id)
    SELECT v_first + e.ord - 1,
           p_stream_ids[e.sidx],
           v_old[e.sidx] + (e.ord - v_start[e.sidx]),
           e.id, e.type, e.data, e.meta, p_recorded_at, v_xid
      FROM ROWS FROM (
             unnest(p_event_ids), unnest(p_types), json_array_elements(p_data),
             json_array_elements(p_metadata), unnest(p_event_streams)
           ) WITH ORDINALITY AS e(id, type, data, meta, sidx, ord);
    IF p_notify THEN
      PERFORM pg_notify('${channel}', (v_first + n_events - 1)::text);
    END IF;
  END IF;

  FOR i IN 1..n_streams LOOP
    stream_version := v_old[i] + p_counts[i];
    first_position := CASE WHEN p_counts[i] = 0 THEN 0 ELSE v_first + v_start[i] END;
    RETURN NEXT;
  END LOOP;
END
$fn$;

-- The common case, one event to one stream, as append_events does it for n_streams = 1 and
-- n_events = 1 (same locks, same check and error, same xid/position rule, same rows), with scalar
-- parameters and fewer statements: no arrays to parse or unnest. Returns one row. Differences,
-- and why they keep the guarantees:
-- - The writer mark is taken with the stream locks, before the check, not after it. It is only
--   ever taken shared (it never blocks), and readers count a transaction as an appender only
--   once it also has an xid, which is still assigned later, under the position lock; so readers
--   see exactly what they saw before, and an append that fails its check (and has no xid) is
--   ignored by them as before.
-- - The position lock is taken, used and released by one statement, evaluated left to right:
--   lock, xid, position, unlock. xid order still equals position order across appenders (both
--   drawn under the lock), and the lock is held for the shortest time, so appenders queue on it
--   less. A failure inside that statement releases the lock in the handler, if this session
--   still holds it (it may have failed while waiting for it).
CREATE OR REPLACE FUNCTION ${s}.append_event(
  p_stream_id   text,
  p_expected    bigint,
  p_event_id    uuid,
  p_type        text,
  p_data        json,
  p_metadata    json,
  p_recorded_at timestamptz,
  p_notify      boolean,
  OUT stream_version bigint,
  OUT first_position bigint
)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_key    integer := hashtext(p_stream_id);
  v_actual bigint;
  v_xid    xid8;
  v_void   text;
BEGIN
  -- 1. Bucket (shared), then stream (exclusive), as append_events for one stream; and the writer
  -- mark (shared, never waits).
  PERFORM pg_advisory_xact_lock_shared(${bucketClass}, v_key & ${BUCKETS - 1}), pg_advisory_xact_lock(${streamClass}, v_key),
          pg_advisory_xact_lock_shared(${LOCK_CLASS.writer}, ${key});
  -- 2. The committed version cannot move while the stream lock is held (a new statement, so a
  -- new snapshot taken after the lock was granted).
  SELECT max(e.version) INTO v_actual FROM ${s}.events e WHERE e.stream_id = p_stream_id;
  v_actual := coalesce(v_actual, 0);
  IF (p_expected = -2 AND v_actual = 0) OR (p_expected >= 0 AND v_actual <> p_expected) THEN
    RAISE EXCEPTION USING ERRCODE = 'EF001', MESSAGE = 'eventfold: expected version mismatch',
      DETAIL = '1:' || v_actual;
  END IF;
  -- 3. Gap safety: under the position lock, the xid, then the position (one statement, left to
  -- right; see above).
  BEGIN
    SELECT pg_advisory_lock(${LOCK_CLASS.position}, ${key}), pg_current_xact_id(), nextval('${s}.events_position_seq'),
           pg_advisory_unlock(${LOCK_CLASS.position}, ${key})
      INTO v_void, v_xid, first_position, v_void;
  EXCEPTION WHEN OTHERS OR query_canceled THEN
    -- A session lock outlives the transaction: never leave it behind.
    IF EXISTS (SELECT 1 FROM pg_locks l
                WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted
                  AND l.classid = ${LOCK_CLASS.position} AND l.objid = ${key} AND l.objsubid = 2) THEN
      PERFORM pg_advisory_unlock(${LOCK_CLASS.position}, ${key});
    END IF;
    RAISE;
  END;
  -- 4. Write.
  stream_version := v_actual + 1;
  IF v_actual = 0 THEN
    INSERT INTO ${s}.streams (stream_id) VALUES (p_stream_id);
  END IF;
  INSERT INTO ${s}.events
    (position, stream_id, version, event_id, type, data, metadata, recorded_at, transaction_id)
  VALUES (first_position, p_stream_id, v_actual + 1, p_event_id, p_type, p_data, p_metadata, p_recorded_at, v_xid);
  IF p_notify THEN
    PERFORM pg_notify('${channel}', first_position::text);
  END IF;
END
$fn$;

-- readAll's gap safety. A reader must not return position p while an appender that drew a
-- position below p may still commit. Appenders draw positions in xid order (see append_events),
-- so it is enough to return only events whose transaction_id is below the oldest xid that may
-- still belong to a running appender. That xid is found in two steps, each its own statement:
--   1. log_watch(): xids of the appenders running now (they hold the shared writer lock; only the
--      owner of an xid holds ExclusiveLock on it), and the floor: every xid assigned from now on
--      is at least the xmax of this statement's snapshot.
--   2. log_horizon(floor, writers), called by the statement that reads the events (STABLE: it sees
--      that statement's snapshot, taken after step 1): the oldest xid of the snapshot that is still
--      running and either was an appender in step 1 or started after it; none: the snapshot's xmax.
-- Unrelated transactions (other schemas, other work) do not hold readers back unless they took
-- their xid in the instant between the two steps.
CREATE OR REPLACE FUNCTION ${s}.log_watch(OUT floor xid8, OUT writers xid[])
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  v_snapshot pg_snapshot := pg_current_snapshot();
BEGIN
  writers := '{}';
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    -- One snapshot for the whole transaction: step 2 would not see a later snapshot. Fall back to
    -- the snapshot's xmin (every xid below it has finished), which is always safe.
    floor := pg_snapshot_xmin(v_snapshot);
    RETURN;
  END IF;
  floor := pg_snapshot_xmax(v_snapshot);
  -- An appender with an xid below the floor was running when the snapshot was taken.
  IF EXISTS (SELECT 1 FROM pg_snapshot_xip(v_snapshot)) THEN
    WITH locks AS MATERIALIZED (
      SELECT l.locktype, l.transactionid, l.virtualtransaction
        FROM pg_locks l
       WHERE l.granted
         AND ((l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock')
              OR (l.locktype = 'advisory' AND l.classid = ${LOCK_CLASS.writer} AND l.objid = ${key} AND l.objsubid = 2))
    )
    SELECT coalesce(array_agg(t.transactionid), '{}') INTO writers
      FROM locks t
     WHERE t.locktype = 'transactionid'
       AND EXISTS (SELECT 1 FROM locks w WHERE w.locktype = 'advisory' AND w.virtualtransaction = t.virtualtransaction);
  END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION ${s}.log_horizon(p_floor xid8, p_writers xid[]) RETURNS xid8
LANGUAGE sql STABLE AS $fn$
  SELECT coalesce(min(x), pg_snapshot_xmax(pg_current_snapshot()))
    FROM pg_snapshot_xip(pg_current_snapshot()) AS x
   WHERE x >= p_floor OR x::xid = ANY (p_writers)
$fn$;

-- readAll's page: events from p_from on, in position order, that no appender still running can
-- precede (columns: see rows.ts).
CREATE OR REPLACE FUNCTION ${s}.read_log(p_from bigint, p_limit integer)
RETURNS TABLE (o_position bigint, o_stream_id text, o_version bigint, o_event_id uuid, o_type text,
               o_data json, o_metadata json, o_recorded_seconds float8)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  w record;
BEGIN
  w := ${s}.log_watch();
  RETURN QUERY
    SELECT ${LOG_COLUMNS}
      FROM ${s}.events
     WHERE position >= p_from
       AND transaction_id < (SELECT ${s}.log_horizon(w.floor, w.writers))
     ORDER BY position
     LIMIT p_limit;
END
$fn$;

-- readAll with a filter: the same page, only events of the given types and/or stream categories
-- (the part of the stream id before the first '-'). Planned per call (EXECUTE) so that a type
-- filter can use events_type_position; a category filter reads in position order.
CREATE INDEX IF NOT EXISTS events_type_position ON ${s}.events (type, position);

CREATE OR REPLACE FUNCTION ${s}.read_log_filtered(p_from bigint, p_limit integer, p_types text[], p_categories text[])
RETURNS TABLE (o_position bigint, o_stream_id text, o_version bigint, o_event_id uuid, o_type text,
               o_data json, o_metadata json, o_recorded_seconds float8)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  w record;
BEGIN
  w := ${s}.log_watch();
  -- As in read_log: the horizon is computed by the statement that reads the events.
  RETURN QUERY EXECUTE
    'SELECT ${LOG_COLUMNS.replace(/'/g, "''")} FROM ${s}.events'
    || ' WHERE position >= $1 AND transaction_id < (SELECT ${s}.log_horizon($2, $3))'
    || CASE WHEN p_types IS NULL THEN '' ELSE ' AND type = ANY ($4)' END
    || CASE WHEN p_categories IS NULL THEN '' ELSE ' AND split_part(stream_id, ''-'', 1) = ANY ($5)' END
    || ' ORDER BY position LIMIT $6'
    USING p_from, w.floor, w.writers, p_types, p_categories, p_limit;
END
$fn$;

-- headPosition: the last position a readAll reader can see now.
CREATE OR REPLACE FUNCTION ${s}.log_head() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  w record;
  v_head bigint;
BEGIN
  w := ${s}.log_watch();
  SELECT coalesce(max(e.position), 0) INTO v_head
    FROM ${s}.events e
   WHERE e.transaction_id < (SELECT ${s}.log_horizon(w.floor, w.writers));
  RETURN v_head;
END
$fn$;

${groupCommitSql(schema)}
INSERT INTO ${s}.eventfold_schema (version) VALUES (${POSTGRES_SCHEMA_VERSION}) ON CONFLICT DO NOTHING;
`;
}

/** The DDL for the default schema `eventfold`, for documentation and manual provisioning. */
export const POSTGRES_DDL: string = postgresSchemaSql('eventfold');
