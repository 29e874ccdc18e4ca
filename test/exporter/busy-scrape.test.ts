// A scrape never waits on a busy worker's collection: under continuous traffic the worker answers the scrape at
// once with its last push, and once the traffic stops a scrape is exact again. The app's metrics take 1.5 s to
// collect, so a scrape that waited for a collection would take that long.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, loadLoop, startServer } from '../helpers/server.js';
import { scrape, sum } from '../helpers/metrics.js';

const APP = path.join(FIXTURES, 'apps', 'slow-collect.js');
const COLLECT_MS = 1500;

test('a busy worker is not asked to collect: scrapes under traffic do not wait for it, and the scrape after is exact', async () => {
  const { url, metricsUrl } = await startServer([APP, '-w', '1', '--scrape-timeout', '10'], { env: { COLLECT_MS: String(COLLECT_MS) } });
  const load = loadLoop(`${url}/`, { concurrency: 8, maxMs: 60_000 });
  const during: number[] = [];
  try {
    // Traffic is flowing: the worker has pushed a snapshot with some of it.
    const deadline = Date.now() + 30_000;
    while (sum(await scrape(metricsUrl), 'gunicorn_worker_requests_total') === 0) {
      assert.ok(Date.now() < deadline, 'no request counted under traffic within 30 s');
    }
    for (let i = 0; i < 5; i++) during.push((await scrape(metricsUrl)).ms);
  } finally {
    await load.stop();
  }
  assert.deepEqual(load.failures, []);
  // Each would take COLLECT_MS or more if the scrape waited for a collection.
  assert.ok(Math.max(...during) < COLLECT_MS * 0.66, `scrapes under traffic took ${during.join(', ')} ms`);
  // The traffic stopped: the next scrape waits for the worker's flush and is exact.
  const after = await scrape(metricsUrl);
  assert.equal(sum(after, 'gunicorn_worker_requests_total'), load.statuses.get(200));
  assert.ok(after.ms >= COLLECT_MS * 0.9, `the scrape after the traffic took ${after.ms} ms: it did not wait for the flush`);
  assert.equal(sum(after, 'promfork_held_decreases_total'), 0);
});
