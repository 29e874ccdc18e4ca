// The app's own prom-client metrics are aggregated across workers like ours: counters and histograms
// summed (and kept when a worker dies), gauges by the aggregator they declare, from live workers only.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, request, startServer } from '../helpers/server.js';
import { scrape, sum } from '../helpers/metrics.js';

const APP = path.join(FIXTURES, 'apps', 'custom-metrics.js');

test('app counters, histograms and gauges are aggregated across workers, and survive a worker death', async () => {
  const { server, url, metricsUrl } = await startServer([APP, '-w', '2']);
  const perPid = new Map<number, number>();
  for (let i = 0; i < 30; i++) {
    const r = await request(`${url}/${i % 3 === 0 ? 'b' : 'a'}`);
    perPid.set(Number(r.body), (perPid.get(Number(r.body)) ?? 0) + 1);
  }
  let s = await scrape(metricsUrl);
  assert.equal(sum(s, 'app_hits_total', { kind: 'a' }), 20);
  assert.equal(sum(s, 'app_hits_total', { kind: 'b' }), 10);
  assert.equal(sum(s, 'app_body_bytes_count'), 30);
  assert.equal(sum(s, 'app_served'), 30);
  assert.equal(sum(s, 'app_served_max'), Math.max(...perPid.values()));
  // One series per label set: the app's families are merged, not repeated per worker.
  assert.equal(s.types.filter((t) => t === 'app_hits_total').length, 1);

  // Kill the busiest worker: its counts stay (folded), its gauges go.
  const [victim, victimCount] = [...perPid].sort((a, b) => b[1] - a[1])[0]!;
  const from = server.output.length;
  process.kill(victim, 'SIGKILL');
  await server.waitFor(/Worker booted/, { from });
  s = await scrape(metricsUrl);
  assert.equal(sum(s, 'app_hits_total'), 30);
  assert.equal(sum(s, 'app_body_bytes_count'), 30);
  assert.equal(sum(s, 'app_served'), 30 - victimCount);
  assert.equal(sum(s, 'promfork_held_decreases_total'), 0);
});
