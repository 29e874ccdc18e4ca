// The thread worker runs handlers in parallel inside one process, and its main thread keeps beating while
// handler threads are busy (timeout checks main-loop liveness only, as Gunicorn's gthread).
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, request, startServer } from '../helpers/server.js';

const APP = path.join(FIXTURES, 'apps', 'thread-app.js') + ':app';

async function cpuBurst(url: string, n: number, ms: number) {
  const t0 = performance.now();
  const replies = await Promise.all(Array.from({ length: n }, () => request(`${url}/cpu?ms=${ms}`)));
  const seconds = (performance.now() - t0) / 1000;
  for (const r of replies) assert.equal(r.status, 200, r.body);
  const threads = new Set(replies.map((r) => (JSON.parse(r.body) as { threadId: number }).threadId));
  const pids = new Set(replies.map((r) => (JSON.parse(r.body) as { pid: number }).pid));
  return { seconds, threads, pids };
}

test('1 worker, 2 threads: 4 concurrent 500 ms CPU-bound requests take about 1 s', async () => {
  const { server, url } = await startServer([APP, '-w', '1', '-k', 'thread', '--threads', '2']);
  const [pid] = server.workerPids();
  const { seconds, threads, pids } = await cpuBurst(url, 4, 500);
  assert.deepEqual([...pids], [pid], 'one process served them all');
  assert.equal(threads.size, 2, 'two threads of that process served them');
  assert.ok(seconds >= 0.9, `took ${seconds.toFixed(3)} s: 4 x 500 ms on 2 threads cannot take less than 1 s`);
  assert.ok(seconds < 1.8, `took ${seconds.toFixed(3)} s: the two threads did not run in parallel`);
});

test('1 worker, 1 thread: the same 4 requests take about 2 s', async () => {
  const { url } = await startServer([APP, '-w', '1', '-k', 'thread', '--threads', '1']);
  const { seconds, threads } = await cpuBurst(url, 4, 500);
  assert.equal(threads.size, 1);
  assert.ok(seconds >= 1.9, `took ${seconds.toFixed(3)} s with one thread`);
});

test('heartbeats keep flowing: a --timeout 2 worker is not killed while its threads run 3 s handlers', async () => {
  const { server, url } = await startServer([APP, '-w', '1', '-k', 'thread', '--threads', '2', '--timeout', '2']);
  const [pid] = server.workerPids();
  const from = server.output.length;
  const { seconds, pids } = await cpuBurst(url, 2, 3000);
  assert.ok(seconds >= 2.9, `took ${seconds.toFixed(3)} s`);
  assert.deepEqual([...pids], [pid]);
  assert.doesNotMatch(server.output.slice(from), /WORKER TIMEOUT/);
  assert.deepEqual(server.workerPids(), [pid], 'the same worker is still there');
  // The worker is serving as before.
  assert.equal((await request(`${url}/who`)).status, 200);
});

test('control: a 4 s handler on the async worker blocks its heartbeats, and it is timed out', async () => {
  const { server, url } = await startServer([APP, '-w', '1', '-k', 'async', '--timeout', '1']);
  const [pid] = server.workerPids();
  const from = server.output.length;
  await request(`${url}/cpu?ms=4000`).catch(() => null);
  await server.waitFor(new RegExp(`WORKER TIMEOUT \\(pid:${pid}\\)`), { from });
});
