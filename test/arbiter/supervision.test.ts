// Supervision: dead workers are replaced, silent ones killed after `timeout`, max-requests recycles,
// and the sync class admits one request per worker with the rest waiting (none refused).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { APP, loadLoop, request, startServer } from '../helpers/server.js';

test('a worker killed with SIGKILL under load is replaced; the other keeps serving', async () => {
  const { server, url } = await startServer([APP, '-w', '2']);
  const [victim, survivor] = server.workerPids();
  const load = loadLoop(`${url}/`, { concurrency: 4, maxMs: 30_000 });
  while (load.sent < 50) await tick();
  const from = server.output.length;
  process.kill(victim!, 'SIGKILL');
  await server.waitFor(new RegExp(`Worker \\(pid:${victim}\\) was sent SIGKILL! Perhaps out of memory\\?`), { from });
  await server.waitFor(/Worker booted/, { from });
  const sentAtReplace = load.sent;
  while (load.sent < sentAtReplace + 50) await tick();
  await load.stop();
  const pids = server.workerPids();
  assert.equal(pids.length, 2);
  assert.ok(pids.includes(survivor!), 'the other worker was not disturbed');
  assert.ok(!pids.includes(victim!));
  // Only requests in flight on the killed worker can fail: at most one per load loop.
  assert.ok(load.failures.length <= 4, `failures: ${load.failures.join(', ')}`);
  for (const f of load.failures) assert.match(f, /socket hang up|ECONNRESET/);
});

test('a hung sync request is killed after --timeout (SIGABRT, then SIGKILL) and its worker replaced', async () => {
  const { server, url } = await startServer([APP, '-k', 'sync', '-w', '1', '--timeout', '2']);
  const [pid] = server.workerPids();
  const from = server.output.length;
  const hung = request(`${url}/hang`).then(
    () => 'answered',
    () => 'cut',
  );
  await server.waitFor(new RegExp(`\\[CRITICAL\\] WORKER TIMEOUT \\(pid:${pid}\\)`), { from });
  assert.equal(await hung, 'cut');
  await server.waitFor(new RegExp(`Worker \\(pid:${pid}\\) exited with code 1`), { from });
  await server.waitFor(/Worker booted/, { from });
  assert.equal((await request(`${url}/`)).status, 200);
  assert.notDeepEqual(server.workerPids(), [pid]);
});

test('an async worker whose event loop is blocked stops beating and is killed after --timeout', async () => {
  const { server, url } = await startServer([APP, '-k', 'async', '-w', '1', '--timeout', '2']);
  const [pid] = server.workerPids();
  const from = server.output.length;
  const blocked = request(`${url}/cpu?ms=60000`).then(
    () => 'answered',
    () => 'cut',
  );
  await server.waitFor(new RegExp(`WORKER TIMEOUT \\(pid:${pid}\\)`), { from });
  // The blocked loop cannot run the SIGABRT listener: SIGKILL follows on the next tick.
  await server.waitFor(new RegExp(`Worker \\(pid:${pid}\\) was sent SIGKILL`), { from });
  assert.equal(await blocked, 'cut');
  await server.waitFor(/Worker booted/, { from });
  assert.equal((await request(`${url}/`)).status, 200);
});

test('max-requests recycles workers; every request is answered', async () => {
  const { server, url } = await startServer([APP, '-w', '1', '--max-requests', '5']);
  const pids = new Set<number>();
  for (let i = 0; i < 12; i++) {
    const r = await request(`${url}/pid`);
    assert.equal(r.status, 200);
    pids.add(Number(r.body));
  }
  await server.waitForCount(/Autorestarting worker after current request\./, 2);
  assert.equal(pids.size, 3, `5 + 5 + 2 requests over three workers, got ${[...pids]}`);
});

test('max-requests-jitter draws each limit between max and max + jitter', async () => {
  const { url } = await startServer([APP, '-w', '1', '--max-requests', '3', '--max-requests-jitter', '2']);
  const perWorker = new Map<number, number>();
  for (let i = 0; i < 30; i++) {
    const pid = Number((await request(`${url}/pid`)).body);
    perWorker.set(pid, (perWorker.get(pid) ?? 0) + 1);
  }
  const counts = [...perWorker.values()].slice(0, -1); // the last worker is still serving
  assert.ok(counts.length >= 5);
  for (const c of counts) assert.ok(c >= 3 && c <= 5, `a worker served ${c} requests`);
});

test('sync admission: 2 workers, 4 concurrent 1 s requests take about 2 s and none is refused', async () => {
  const { url } = await startServer([APP, '-k', 'sync', '-w', '2']);
  const t0 = Date.now();
  const replies = await Promise.all(Array.from({ length: 4 }, () => request(`${url}/slow?ms=1000`)));
  const elapsed = Date.now() - t0;
  assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 200]);
  for (const r of replies) assert.equal(r.headers.connection, 'close');
  const pids = new Set(replies.map((r) => r.body));
  assert.equal(pids.size, 2, 'two workers served two requests each');
  // One at a time per worker: two rounds of 1 s, not one, and not four.
  assert.ok(elapsed >= 1900 && elapsed < 3500, `took ${elapsed} ms`);
});

function tick(): Promise<void> {
  return new Promise((r) => setTimeout(r, 10));
}
