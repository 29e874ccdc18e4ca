// Metrics are exact with threads: every request counted once in its worker seat's series, failures counted
// with the error's class, and the app's own prom-client metrics of every thread summed into the seat.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, request, startServer } from '../helpers/server.js';
import { scrape, seriesOf, sum } from '../helpers/metrics.js';

const APP = path.join(FIXTURES, 'apps', 'thread-app.js') + ':app';

test('N requests across 2 threads count exactly N, and the app counter of both threads is summed exactly', async () => {
  const { url, metricsUrl } = await startServer([APP, '-k', 'thread', '--threads', '2']);
  const N = 40;
  const perThread = new Map<number, number>();
  // In batches of 4 concurrent requests, so that both threads are busy at once too.
  for (let i = 0; i < N; i += 4) {
    const replies = await Promise.all(Array.from({ length: 4 }, () => request(`${url}/who`)));
    for (const r of replies) {
      assert.equal(r.status, 200);
      const t = (JSON.parse(r.body) as { threadId: number }).threadId;
      perThread.set(t, (perThread.get(t) ?? 0) + 1);
    }
  }
  assert.equal(perThread.size, 2, `both threads served: ${JSON.stringify([...perThread])}`);
  const s = await scrape(metricsUrl);
  assert.equal(sum(s, 'gunicorn_worker_requests_total', { worker_id: 'worker_0' }), N);
  assert.equal(sum(s, 'gunicorn_worker_request_duration_seconds_count', { worker_id: 'worker_0' }), N);
  assert.equal(sum(s, 'gunicorn_worker_failed_requests_total'), 0);
  // The app's counter lives in each thread's registry: summed, one family, one series per label set.
  assert.equal(sum(s, 'app_thread_hits_total', { route: 'who' }), N);
  assert.equal(seriesOf(s, 'app_thread_hits_total').length, 1);
  assert.equal(s.types.filter((t) => t === 'app_thread_hits_total').length, 1);
  assert.equal(sum(s, 'app_thread_body_bytes_count'), N);
  assert.equal(sum(s, 'app_thread_body_bytes_sum'), 5 * N);
  assert.equal(sum(s, 'app_thread_body_bytes_bucket', { le: '10' }), N);
  assert.equal(s.types.filter((t) => t === 'app_thread_body_bytes').length, 1);
});

test('a handler that throws or rejects in a thread gives 500 and is counted as failed with its class', async () => {
  const { server, url, metricsUrl } = await startServer([APP, '-k', 'thread', '--threads', '2']);
  const [pid] = server.workerPids();
  const thrown = await request(`${url}/throw`);
  assert.equal(thrown.status, 500);
  assert.equal(thrown.body, 'Internal Server Error\n');
  assert.equal((await request(`${url}/reject`)).status, 500);
  assert.equal((await request(`${url}/status?code=503`)).status, 503);
  assert.equal((await request(`${url}/who`)).status, 200);
  assert.deepEqual(server.workerPids(), [pid], 'the worker process is unharmed');
  assert.match(server.output, /Error handling request GET \/throw\nRangeError: thrown in a thread\n\s+at app /);

  const s = await scrape(metricsUrl);
  const w = { worker_id: 'worker_0', method: 'GET' };
  assert.equal(sum(s, 'gunicorn_worker_requests_total'), 4);
  assert.equal(sum(s, 'gunicorn_worker_failed_requests_total', { ...w, endpoint: '/throw' }), 1);
  assert.equal(sum(s, 'gunicorn_worker_error_handling_total', { ...w, endpoint: '/throw', error_type: 'RangeError' }), 1);
  assert.equal(sum(s, 'gunicorn_worker_failed_requests_total', { ...w, endpoint: '/reject' }), 1);
  assert.equal(sum(s, 'gunicorn_worker_error_handling_total', { ...w, endpoint: '/reject', error_type: 'TypeError' }), 1);
  assert.equal(sum(s, 'gunicorn_worker_error_handling_total', { ...w, endpoint: '/status', error_type: 'http_503' }), 1);
  assert.equal(sum(s, 'gunicorn_worker_failed_requests_total'), 3);
  assert.equal(sum(s, 'gunicorn_worker_error_handling_total'), 3);
});

test('Express route templates are the endpoint label of failed requests served in threads', async () => {
  const { url, metricsUrl } = await startServer([path.join(FIXTURES, 'apps', 'thread-express.js') + ':app', '-k', 'thread', '--threads', '2']);
  for (let i = 0; i < 3; i++) assert.equal((await request(`${url}/boom`)).status, 500);
  for (const name of ['apples', 'pears']) assert.equal((await request(`${url}/orders/${name}`)).status, 502);
  const s = await scrape(metricsUrl);
  assert.equal(sum(s, 'gunicorn_worker_failed_requests_total', { endpoint: '/orders/:name' }), 2);
  assert.equal(sum(s, 'gunicorn_worker_error_handling_total', { endpoint: '/orders/:name', error_type: 'http_502' }), 2);
  assert.equal(sum(s, 'gunicorn_worker_failed_requests_total', { endpoint: '/boom' }), 3);
  assert.equal(sum(s, 'gunicorn_worker_error_handling_total', { endpoint: '/boom', error_type: 'http_500' }), 3);
});

test('sums stay exact and monotonic across 2 workers x 2 threads, a dead thread and a dead worker', async () => {
  const { server, url, metricsUrl } = await startServer([APP, '-w', '2', '-k', 'thread', '--threads', '2']);
  const hit = async (n: number) => {
    for (let i = 0; i < n; i += 5) await Promise.all(Array.from({ length: 5 }, () => request(`${url}/who`)));
  };
  await hit(30);
  let s = await scrape(metricsUrl);
  assert.equal(sum(s, 'gunicorn_worker_requests_total'), 30);
  assert.equal(sum(s, 'app_thread_hits_total'), 30);

  // A thread dies: the app counts it had are kept (folded into the seat), its lost request counted once.
  let from = server.output.length;
  await request(`${url}/crash`).catch(() => null);
  await server.waitFor(/Worker thread \d \(pid:\d+\) replaced/, { from });
  await hit(10);
  s = await scrape(metricsUrl);
  assert.equal(sum(s, 'gunicorn_worker_requests_total'), 41);
  assert.equal(sum(s, 'app_thread_hits_total'), 40);
  assert.equal(sum(s, 'promfork_worker_thread_restarts_total'), 1);

  // A worker process dies: its seat's totals, threads' included, are folded by the primary.
  from = server.output.length;
  process.kill(server.workerPids()[0]!, 'SIGKILL');
  await server.waitFor(/Worker booted \(pid:\d+/, { from });
  await hit(10);
  s = await scrape(metricsUrl);
  assert.equal(sum(s, 'gunicorn_worker_requests_total'), 51);
  assert.equal(sum(s, 'app_thread_hits_total'), 50);
  assert.equal(sum(s, 'promfork_held_decreases_total'), 0);
});

test("prom-client's default process metrics are not multiplied by the number of threads", async () => {
  const { server, url, metricsUrl } = await startServer([path.join(FIXTURES, 'apps', 'thread-default-metrics.js'), '-k', 'thread', '--threads', '3']);
  const [pid] = server.workerPids();
  for (let i = 0; i < 6; i++) assert.equal((await request(`${url}/`)).status, 200);
  const s = await scrape(metricsUrl);
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
  const reported = sum(s, 'process_resident_memory_bytes');
  // One process's RSS (it moves a little between the two readings), not three times it.
  assert.ok(reported > rss * 0.7 && reported < rss * 1.3, `process_resident_memory_bytes ${reported}, VmRSS ${rss}`);
  assert.equal(seriesOf(s, 'process_cpu_seconds_total').length, 1);
  assert.equal(sum(s, 'nodejs_version_info'), 1);
  // Per-thread families are summed: three heaps.
  assert.equal(s.types.filter((t) => t === 'nodejs_heap_size_used_bytes').length, 1);
});
