import pg from 'pg';
import { PostgresEventStore } from './src/postgres/index.ts';
const pool = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres', max: 4 });
const schema = 'prof_tmp';
const store = await PostgresEventStore.create({ pool, schema });
const N = 100_000;
if ((await store.streamVersion('big')) === 0) {
  for (let v = 0; v < N; v += 1000) await store.append('big', Array.from({ length: 1000 }, (_, i) => ({ type: 'Inc', data: { by: (v + i) % 7, note: 'a short payload' } })), { expectedVersion: v });
}
async function t(label: string, fn: () => Promise<void>) {
  let best = Infinity;
  for (let r = 0; r < 4; r++) { const s = performance.now(); await fn(); best = Math.min(best, performance.now() - s); }
  console.log(label, (N / best * 1000).toFixed(0), 'ev/s');
}
for (const ps of [1000, 5000, 20000]) {
  const st = new PostgresEventStore({ pool, schema, pageSize: ps });
  await t(`lib ps=${ps}`, async () => { let x = 0; for await (const p of st.readStream('big').pages()) for (const e of p) x += (e.data as any).by; });
}
await t('raw data only', async () => { const r = await pool.query(`SELECT data FROM ${schema}.events WHERE stream_id='big' ORDER BY version`); let x = 0; for (const row of r.rows) x += row.data.by; });
await t('raw all cols', async () => { const r = await pool.query(`SELECT position, stream_id, version, event_id, type, data, metadata, recorded_at FROM ${schema}.events WHERE stream_id='big' ORDER BY version`); let x = 0; for (const row of r.rows) x += row.data.by; });
await t('raw all cols array mode + ms', async () => { const r = await pool.query({ rowMode: 'array', text: `SELECT position, stream_id, version, event_id, type, data, metadata, (extract(epoch FROM recorded_at) * 1000)::float8 FROM ${schema}.events WHERE stream_id='big' ORDER BY version`}); let x = 0; for (const row of r.rows) x += (row[5] as any).by; });
await pool.end();
