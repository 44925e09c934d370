import { drawPositionsSql } from './ddl-positions.js';
import { LOCK_CLASS, quoteIdentifier, schemaLockKey, notifyChannel, streamLockClasses } from './schema-name.js';

/** Stream-lock buckets, as in ddl.ts. */
const BUCKETS = 64;

/**
 * The functions behind group commit (part of `postgresSchemaSql`; `schema` is validated there).
 *
 * `append_group(...)` writes several appends (several store calls) in one transaction, each with its
 * own expected-version checks and its own all-or-nothing outcome. Streams are distinct across the
 * whole group (the client never puts two appends to one stream in a group) and at most 32, so every
 * stream gets its own lock. Arrays as in `append_events`, plus `p_stream_appends[i]`: the 1-based
 * append that stream i belongs to (non-decreasing). Returns one row per stream, in input order:
 * `status` 0 = written, 1 = this stream's check failed (`stream_version` is the actual version),
 * 2 = not written because another stream of the same append failed its check.
 *
 * Gap safety is exactly that of `append_events`: the group is one transaction, which draws all of
 * its positions in one step under the position lock (with its xid), after every check. Appends that
 * failed their check draw nothing and write nothing.
 *
 * `unappend(...)` takes back one append of a group whose in-transaction hook failed (the stream
 * locks are still held and nothing was committed): its events, and the rows of the streams it
 * created.
 */
export function groupCommitSql(schema: string): string {
  const s = quoteIdentifier(schema);
  const key = schemaLockKey(schema);
  const channel = notifyChannel(schema);
  const { stream: streamClass, bucket: bucketClass } = streamLockClasses(schema);
  return `
CREATE OR REPLACE FUNCTION ${s}.append_group(
  p_stream_ids     text[],
  p_stream_appends integer[],
  p_expected       bigint[],
  p_counts         integer[],
  p_event_streams  integer[],
  p_event_ids      uuid[],
  p_types          text[],
  p_data           json,
  p_metadata       json,
  p_recorded_at    timestamptz,
  p_notify         boolean
) RETURNS TABLE (stream_version bigint, first_position bigint, status smallint)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  n_streams integer := coalesce(cardinality(p_stream_ids), 0);
  n_appends integer := coalesce(p_stream_appends[cardinality(p_stream_appends)], 0);
  v_failed  boolean[];
  v_status  smallint[] := '{}';
  v_old     bigint[] := '{}';
  v_start   integer[] := '{}';
  v_written integer[] := '{}';
  v_offset  integer := 0;
  v_count   integer := 0;
  v_first   bigint := 0;
  v_xid     xid8;
  v_void    text;
  v_key     integer;
  v_actual  bigint;
  v_exp     bigint;
BEGIN
  IF n_streams = 0 THEN RETURN; END IF;
  v_failed := array_fill(false, ARRAY[n_appends]);
  -- 1. Lock every stream as append_events does for up to 32 streams: shared bucket locks, then
  -- exclusive stream locks, each in ascending key order (DISTINCT keeps the sorted subquery from
  -- being flattened, so the locks are taken in that order), so no two appenders can deadlock.
  PERFORM pg_advisory_xact_lock_shared(${bucketClass}, k.key)
     FROM (SELECT DISTINCT hashtext(x) & ${BUCKETS - 1} AS key FROM unnest(p_stream_ids) AS x ORDER BY 1) AS k;
  PERFORM pg_advisory_xact_lock(${streamClass}, k.key)
     FROM (SELECT DISTINCT hashtext(x) AS key FROM unnest(p_stream_ids) AS x ORDER BY 1) AS k;

  -- 2. Every stream's committed version (it cannot move while the locks are held; a new
  -- statement, so a snapshot taken after they were granted), then the checks: the first mismatch
  -- of an append fails that append only.
  SELECT array_agg(coalesce(st.version, 0) ORDER BY o.i) INTO v_old
    FROM unnest(p_stream_ids) WITH ORDINALITY AS o(id, i)
    LEFT JOIN LATERAL (SELECT max(e.version) AS version FROM ${s}.events e WHERE e.stream_id = o.id) st ON true;
  FOR i IN 1..n_streams LOOP
    v_exp := p_expected[i];
    v_actual := v_old[i];
    v_start[i] := v_offset;
    v_offset := v_offset + p_counts[i];
    v_status[i] := 0;
    IF NOT v_failed[p_stream_appends[i]] AND ((v_exp = -2 AND v_actual = 0) OR (v_exp >= 0 AND v_actual <> v_exp)) THEN
      v_failed[p_stream_appends[i]] := true;
      v_status[i] := 1;
    END IF;
  END LOOP;

  -- 3. Where each written stream's events go among the group's written events.
  FOR i IN 1..n_streams LOOP
    IF v_failed[p_stream_appends[i]] THEN
      IF v_status[i] = 0 THEN v_status[i] := 2; END IF;
      v_written[i] := -1;
    ELSE
      v_written[i] := v_count;
      v_count := v_count + p_counts[i];
    END IF;
  END LOOP;

  IF v_count > 0 THEN
    -- 4. Gap safety, as in append_events: one draw for the whole group.
    PERFORM pg_advisory_xact_lock_shared(${LOCK_CLASS.writer}, ${key});
${drawPositionsSql(s, key, 'v_count', '    ')}

    -- 5. Write the appends that passed their checks.
    INSERT INTO ${s}.streams (stream_id)
    SELECT o.id
      FROM unnest(p_stream_ids) WITH ORDINALITY AS o(id, i)
     WHERE v_written[o.i] >= 0 AND p_counts[o.i] > 0 AND v_old[o.i] = 0;
    INSERT INTO ${s}.events
      (position, stream_id, version, event_id, type, data, metadata, recorded_at, transaction_id)
    SELECT v_first + v_written[e.sidx] + (e.ord - 1 - v_start[e.sidx]),
           p_stream_ids[e.sidx],
           v_old[e.sidx] + (e.ord - v_start[e.sidx]),
           e.id, e.type, e.data, e.meta, p_recorded_at, v_xid
      FROM ROWS FROM (
             unnest(p_event_ids), unnest(p_types), json_array_elements(p_data),
             json_array_elements(p_metadata), unnest(p_event_streams)
           ) WITH ORDINALITY AS e(id, type, data, meta, sidx, ord)
     WHERE v_written[e.sidx] >= 0;
    IF p_notify THEN
      PERFORM pg_notify('${channel}', (v_first + v_count - 1)::text);
    END IF;
  END IF;

  FOR i IN 1..n_streams LOOP
    status := v_status[i];
    stream_version := CASE WHEN v_status[i] = 0 THEN v_old[i] + p_counts[i] ELSE v_old[i] END;
    first_position := CASE WHEN v_status[i] = 0 AND p_counts[i] > 0 THEN v_first + v_written[i] ELSE 0 END;
    RETURN NEXT;
  END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION ${s}.unappend(p_stream_ids text[], p_old bigint[], p_first bigint, p_last bigint)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  DELETE FROM ${s}.events WHERE position BETWEEN p_first AND p_last;
  DELETE FROM ${s}.streams st USING unnest(p_stream_ids, p_old) AS o(id, old)
   WHERE st.stream_id = o.id AND o.old = 0;
END
$fn$;
`;
}
