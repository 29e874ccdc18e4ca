// The exporter end to end: exact values, bounded labels, a scrape that never waits on a blocked worker,
// promtool-valid output in both formats, and every family exposed once.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { APP, request, startServer } from '../helpers/server.js';
import { scrape, seriesOf, sum } from '../helpers/metrics.js';
import { needTool } from '../helpers/tools.js';
import { until } from '../helpers/poll.js';

test('N requests give exactly N, failures by exception and by 5xx counted once each', async () => {
  const { server, url, metricsUrl } = await startServer([APP, '-w', '2']);
  const plan = { ok: 37, thrown: 5, rejected: 4, status503: 6 };
  const calls: Promise<unknown>[] = [];
  for (let i = 0; i < plan.ok; i++) calls.push(request(`${url}/`));
  for (let i = 0; i < plan.thrown; i++) calls.push(request(`${url}/throw`));
  for (let i = 0; i < plan.rejected; i++) calls.push(request(`${url}/reject`));
  for (let i = 0; i < plan.status503; i++) calls.push(request(`${url}/status?code=503`));
  await Promise.all(calls);
  const total = plan.ok + plan.thrown + plan.rejected + plan.status503;
  const s = await scrape(metricsUrl);
  assert.equal(sum(s, 'gunicorn_worker_requests_total'), total);
  assert.equal(sum(s, 'gunicorn_worker_request_duration_seconds_count'), total);
  assert.equal(sum(s, 'gunicorn_worker_request_duration_seconds_bucket', { le: '+Inf' }), total);
  assert.equal(sum(s, 'gunicorn_worker_failed_requests_total'), plan.thrown + plan.rejected + plan.status503);
  assert.equal(sum(s, 'gunicorn_worker_failed_requests_total', { endpoint: '/throw', method: 'GET' }), plan.thrown);
  assert.equal(sum(s, 'gunicorn_worker_error_handling_total', { error_type: 'Error', endpoint: '/throw' }), plan.thrown);
  assert.equal(sum(s, 'gunicorn_worker_error_handling_total', { error_type: 'TypeError', endpoint: '/reject' }), plan.rejected);
  assert.equal(sum(s, 'gunicorn_worker_error_handling_total', { error_type: 'http_503', endpoint: '/status' }), plan.status503);
  assert.equal(sum(s, 'gunicorn_worker_error_handling_total'), plan.thrown + plan.rejected + plan.status503);
  // Two seats, each with its own series; memory, CPU, uptime, pid and one state series per seat.
  assert.deepEqual(seriesOf(s, 'gunicorn_worker_requests_total').sort(), [
    'gunicorn_worker_requests_total{worker_id="worker_0"}',
    'gunicorn_worker_requests_total{worker_id="worker_1"}',
  ]);
  for (const name of ['gunicorn_worker_memory_bytes', 'gunicorn_worker_cpu_percent', 'gunicorn_worker_uptime_seconds', 'gunicorn_worker_state', 'promfork_worker_pid']) {
    assert.equal(seriesOf(s, name).length, 2, name);
  }
  // The pid gauge names the process now in each seat.
  assert.deepEqual(seriesOf(s, 'promfork_worker_pid').map((k) => s.samples.get(k)!).sort((a, b) => a - b), server.workerPids());
  assert.ok(sum(s, 'gunicorn_worker_memory_bytes', { worker_id: 'worker_0' }) > 10_000_000);
  assert.equal(sum(s, 'gunicorn_worker_state', { state: 'running' }), 2);
  assert.equal(sum(s, 'gunicorn_master_worker_restarts_total'), 0);
  // Law L6 (docs/design.md): no family twice.
  assert.equal(new Set(s.types).size, s.types.length);
});

test('the endpoint label stays bounded under thousands of distinct paths', async () => {
  const { url, metricsUrl } = await startServer([APP, '--endpoint-cap', '5']);
  const letters = (i: number) => i.toString(26).replace(/\d/g, (d) => 'qrstuvwxyz'[Number(d)]!);
  for (let batch = 0; batch < 20; batch++) {
    await Promise.all(Array.from({ length: 100 }, (_, j) => request(`${url}/fail/${letters(batch * 100 + j)}x`)));
  }
  // Id-like segments collapse without using the cap.
  await Promise.all([request(`${url}/fail/123`), request(`${url}/fail/987654`)]);
  const s = await scrape(metricsUrl);
  const series = seriesOf(s, 'gunicorn_worker_failed_requests_total');
  assert.equal(series.length, 6, series.join('\n')); // 5 distinct values + __other__
  assert.equal(sum(s, 'gunicorn_worker_failed_requests_total'), 2002);
  assert.ok(sum(s, 'gunicorn_worker_failed_requests_total', { endpoint: '__other__' }) >= 1995);
});

test('a scrape while a worker is blocked answers within the deadline with its last values and staleness', async () => {
  const { server, url, metricsUrl } = await startServer([APP, '-w', '2', '--timeout', '60']);
  for (let i = 0; i < 10; i++) await request(`${url}/`);
  const before = await scrape(metricsUrl);
  assert.equal(sum(before, 'gunicorn_worker_requests_total'), 10);
  const from = server.output.length;
  const blocked = request(`${url}/cpu?ms=4000`);
  await server.waitFor(/\[DEBUG\] GET \/cpu/, { from });
  const during = await scrape(metricsUrl);
  assert.ok(during.ms < 1000, `scrape took ${during.ms} ms`);
  // Its counters are the last persisted values: nothing went back, nothing vanished.
  assert.equal(sum(during, 'gunicorn_worker_requests_total'), 10);
  const ages = seriesOf(during, 'promfork_worker_snapshot_age_seconds').map((k) => during.samples.get(k)!);
  assert.equal(ages.length, 2);
  assert.ok(Math.max(...ages) >= 0.2, `the blocked worker's snapshot is stale: ${ages}`);
  assert.equal((await blocked).status, 200);
  // Nothing is lost by the block. The client can have its response before the primary hears from the worker
  // again (the worker answers the scrape it missed in its next loop turn), and until then the primary does not
  // wait for a worker it saw blocked: the first scrape may still serve the last values, the next ones count it.
  const after = await until('the blocked request is counted', async () => {
    const s = await scrape(metricsUrl);
    return sum(s, 'gunicorn_worker_requests_total') === 11 ? s : undefined;
  }, 3000);
  assert.equal(sum(after, 'gunicorn_worker_requests_total'), 11);
  assert.equal(sum(after, 'promfork_held_decreases_total'), 0);
});

// promtool 2.x lints the Prometheus text format only; the OpenMetrics body is checked for its own rules here.
test('promtool accepts the text format; OpenMetrics by Accept', async (t) => {
  const promtool = needTool(t, 'promtool');
  if (promtool === undefined) return;
  const { url, metricsUrl } = await startServer([APP, '-w', '2']);
  await Promise.all([request(`${url}/`), request(`${url}/throw`), request(`${url}/status?code=500`)]);
  const text = await scrape(metricsUrl);
  assert.match(text.contentType, /^text\/plain; version=0\.0\.4/);
  const om = await scrape(metricsUrl, { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' });
  assert.match(om.contentType, /^application\/openmetrics-text; version=1\.0\.0/);
  assert.match(om.text, /# EOF\n$/);
  assert.match(om.text, /^# TYPE gunicorn_worker_requests counter$/m);
  const r = spawnSync(promtool, ['check', 'metrics'], { input: text.text, encoding: 'utf8' });
  assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
  assert.equal(r.stdout + r.stderr, '');
  // OpenMetrics: the same samples; counters declared without _total; one family each; # EOF last.
  const stable = (m: Map<string, number>) =>
    new Map(
      [...m]
        .filter(([k]) => /^gunicorn_worker_(requests|failed|error|request_duration)/.test(k))
        .map(([k, v]) => [k.replace(/le="([^"]+)"/, (_, le: string) => `le="${Number(le)}"`), v]),
    );
  assert.equal(stable(text.samples).size, 2 + 2 * 17 + 3 + 3);
  assert.deepEqual(stable(om.samples), stable(text.samples));
  assert.equal(new Set(om.types).size, om.types.length);
  assert.ok(!om.types.some((t) => t.endsWith('_total')));
});

test('--no-metrics: plain workers and no metrics server', async () => {
  const { server, url } = await startServer([APP, '--no-metrics']);
  assert.equal((await request(`${url}/`)).status, 200);
  assert.match(server.output, /Using worker: AsyncWorker/);
  assert.doesNotMatch(server.output, /Serving metrics/);
});
