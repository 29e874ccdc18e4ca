// promfork_worker_snapshot_age_seconds measures staleness, not idleness: an idle worker writes no new snapshot
// (its metrics did not change), yet it answers the scrape's flush request, so its age stays near 0; and every
// SNAPSHOT_REFRESH_MS it rewrites the unchanged snapshot, so a reader that cannot ask it (the sidecar) sees a
// recent takenAt too. Without either, the StaleExporter alert would fire for every idle, healthy worker.
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';
import { DirectoryStore } from '../../src/store/directory-store.js';
import { SNAPSHOT_REFRESH_MS } from '../../src/metrics/prometheus-instrumentation.js';
import { APP, request, startServer } from '../helpers/server.js';
import { scrape, seriesKey, sum } from '../helpers/metrics.js';

test('an idle worker is not stale: its snapshot age stays near 0, and its snapshot is rewritten every 10 s', async () => {
  const { server, url, metricsUrl, multiprocDir } = await startServer([APP, '--workers', '1']);
  const store = new DirectoryStore(path.join(multiprocDir, 'store'), { ppid: server.pid });
  const [pid] = server.workerPids();
  assert.equal((await request(`${url}/`)).status, 200);
  const deadline = Date.now() + 10_000;
  while (sum(await scrape(metricsUrl), 'gunicorn_worker_requests_total') !== 1) {
    assert.ok(Date.now() < deadline, 'the request was never counted');
  }
  const first = await store.readSnapshot(pid!);
  assert.ok(first);

  // Scrape twice a second until the unchanged snapshot is rewritten (its seq moves on).
  const ages: { elapsedMs: number; age: number }[] = [];
  let rewritten = first;
  const until = Date.now() + SNAPSHOT_REFRESH_MS + 10_000;
  while (rewritten.seq === first.seq) {
    assert.ok(Date.now() < until, `no rewrite within ${SNAPSHOT_REFRESH_MS + 10_000} ms`);
    const s = await scrape(metricsUrl);
    ages.push({
      elapsedMs: Date.now() - first.takenAt,
      age: s.samples.get(seriesKey('promfork_worker_snapshot_age_seconds', { worker_id: 'worker_0' }))!,
    });
    assert.equal(sum(s, 'gunicorn_worker_requests_total'), 1);
    await delay(500); // pacing of the poll, not a wait for an outcome
    rewritten = (await store.readSnapshot(pid!))!;
  }

  // The scrapes spanned most of the idle period, and every one saw a fresh snapshot.
  assert.ok(ages.some((a) => a.elapsedMs >= SNAPSHOT_REFRESH_MS - 2000), JSON.stringify(ages));
  for (const a of ages) assert.ok(a.age >= 0 && a.age < 2, `age ${a.age} s after ${a.elapsedMs} ms idle`);
  // Same content, written again about SNAPSHOT_REFRESH_MS later (one flush interval of slack).
  assert.deepEqual(rewritten.metrics, first.metrics);
  const gap = rewritten.takenAt - first.takenAt;
  assert.ok(gap >= SNAPSHOT_REFRESH_MS && gap < SNAPSHOT_REFRESH_MS + 2500, `rewritten after ${gap} ms`);
});
