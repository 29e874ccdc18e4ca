// Gunicorn's gthread semantics in the thread worker: graceful drain on TERM, keep-alive, max-requests per
// process, and a thread that dies is replaced without losing the process.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, PromforkProcess, request, startServer } from '../helpers/server.js';
import { scrape, sum } from '../helpers/metrics.js';

const APP = path.join(FIXTURES, 'apps', 'thread-app.js') + ':app';
const THREAD = ['-k', 'thread', '--threads', '2'];

test('TERM during a slow request in a thread: it completes, then the worker and the primary exit 0', async () => {
  const { server, url } = await startServer([APP, ...THREAD]);
  const [pid] = server.workerPids();
  const slow = request(`${url}/slow?ms=1500`);
  await server.waitFor(/\[DEBUG\] GET \/slow\?ms=1500/); // logged by the thread when the request starts
  const from = server.output.length;
  server.signal('SIGTERM');
  const reply = await slow;
  assert.equal(reply.status, 200);
  assert.match(reply.body, /^slow done \d+\n$/);
  assert.equal(reply.headers.connection, 'close', 'a draining worker closes the connection after the response');
  const { code } = await server.exited;
  assert.equal(code, 0);
  assert.match(server.output.slice(from), new RegExp(`Worker exiting \\(pid: ${pid}\\)`));
});

test('TERM closes idle keep-alive connections at once, without waiting for --keep-alive', async () => {
  const { server, port } = await startServer([APP, ...THREAD, '--keep-alive', '30']);
  const socket = net.connect(port, '127.0.0.1');
  let data = '';
  socket.on('data', (d: Buffer) => (data += d));
  socket.write('GET /who HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise<void>((resolve) => socket.on('data', () => data.includes('"threadId"') && resolve()));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  const t0 = performance.now();
  server.signal('SIGTERM');
  await closed;
  assert.equal((await server.exited).code, 0);
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(seconds < 3, `the primary took ${seconds.toFixed(2)} s to exit with an idle keep-alive connection open`);
});

test('TERM with a request that never ends: the worker stops at --graceful-timeout', async () => {
  const { server, url } = await startServer([APP, ...THREAD, '--graceful-timeout', '1']);
  const hang = request(`${url}/hang`).then(
    () => 'answered',
    () => 'cut',
  );
  await server.waitFor(/\[DEBUG\] GET \/hang/);
  const t0 = performance.now();
  server.signal('SIGTERM');
  // The worker's own deadline ("Worker graceful timeout") and the primary's (SIGKILL) are both 1 s: either
  // ends it; the request is cut, and the primary exits 0 soon after the deadline, not after the request.
  assert.equal(await hang, 'cut');
  assert.equal((await server.exited).code, 0);
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(seconds >= 0.9 && seconds < 5, `stopped after ${seconds.toFixed(2)} s`);
});

test('keep-alive: one connection carries several requests, and --keep-alive 0 closes each', async () => {
  const { url } = await startServer([APP, ...THREAD, '--keep-alive', '5']);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = () =>
    new Promise<{ reused: boolean; connection?: string; threadId: number }>((resolve, reject) => {
      const req = http.get(`${url}/who`, { agent }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve({ reused: req.reusedSocket, connection: res.headers.connection, threadId: JSON.parse(body).threadId }));
      });
      req.on('error', reject);
    });
  const replies = [];
  for (let i = 0; i < 5; i++) replies.push(await get());
  agent.destroy();
  assert.deepEqual(replies.map((r) => r.reused), [false, true, true, true, true]);
  assert.ok(replies.every((r) => r.connection === 'keep-alive'));
  assert.equal(new Set(replies.map((r) => r.threadId)).size, 1, 'a connection stays on its thread');

  const { url: url0 } = await startServer([APP, ...THREAD, '--keep-alive', '0']);
  const reply = await request(`${url0}/who`);
  assert.equal(reply.headers.connection, 'close');
});

test('an idle keep-alive connection is closed by its thread after --keep-alive seconds', async () => {
  const { port } = await startServer([APP, ...THREAD, '--keep-alive', '1']);
  const socket = net.connect(port, '127.0.0.1');
  let answeredAt = 0;
  let data = '';
  socket.on('data', (d: Buffer) => {
    data += d;
    if (!answeredAt && data.includes('"threadId"')) answeredAt = performance.now();
  });
  socket.write('GET /who HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((resolve) => socket.once('close', resolve));
  const idle = (performance.now() - answeredAt) / 1000;
  assert.match(data, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(data, /Keep-Alive: timeout=1\r\n/);
  assert.ok(answeredAt > 0 && idle >= 0.9 && idle < 3, `closed after ${idle.toFixed(2)} s idle`);
});

test('max-requests counts the requests of the whole process, over its threads', async () => {
  const { server, url, metricsUrl } = await startServer([APP, ...THREAD, '--max-requests', '6']);
  const [pid] = server.workerPids();
  const from = server.output.length;
  const threads = new Set<number>();
  for (let i = 0; i < 6; i++) {
    const r = await request(`${url}/who`);
    const body = JSON.parse(r.body) as { pid: number; threadId: number };
    assert.equal(body.pid, pid);
    threads.add(body.threadId);
    if (i === 5) assert.equal(r.headers.connection, 'close', 'the last allowed response closes its connection');
  }
  assert.equal(threads.size, 2, 'both threads served');
  await server.waitFor(/Autorestarting worker after current request/, { from });
  await server.waitFor(/Worker booted \(pid:\d+/, { from });
  const next = JSON.parse((await request(`${url}/who`)).body) as { pid: number };
  assert.notEqual(next.pid, pid, 'a new worker process serves after the sixth request');
  const s = await scrape(metricsUrl);
  assert.equal(sum(s, 'gunicorn_worker_requests_total'), 7);
  assert.equal(sum(s, 'promfork_held_decreases_total'), 0);
});

test('a thread that crashes (uncaught exception, process.exit) is replaced; the process goes on', async () => {
  const { server, url, metricsUrl } = await startServer([APP, ...THREAD]);
  const [pid] = server.workerPids();
  let from = server.output.length;
  // The request in flight on the dying thread never gets an answer: its connection is closed.
  await assert.rejects(request(`${url}/crash`), /socket hang up|ECONNRESET/);
  await server.waitFor(/Worker thread \d \(pid:\d+\) died \(SyntaxError: thread crash\); 1 request\(s\) in flight lost; replacing it/, { from });
  from = server.output.length;
  await assert.rejects(request(`${url}/exit`), /socket hang up|ECONNRESET/);
  await server.waitFor(/Worker thread \d \(pid:\d+\) died \(WorkerThreadExit: worker thread exited with code 3\)/, { from });
  await server.waitForCount(/Worker thread \d \(pid:\d+\) replaced/, 2);
  // Same process, both threads serving again.
  const threads = new Set<number>();
  for (let i = 0; i < 10; i++) {
    const body = JSON.parse((await request(`${url}/who`)).body) as { pid: number; threadId: number };
    assert.equal(body.pid, pid);
    threads.add(body.threadId);
  }
  assert.equal(threads.size, 2);
  assert.deepEqual(server.workerPids(), [pid]);
  assert.doesNotMatch(server.output, /Worker \(pid:\d+\) exited with code/);

  // Counted: the restarts, and the lost requests as failed (with the error's class), each exactly once.
  const s = await scrape(metricsUrl);
  assert.equal(sum(s, 'promfork_worker_thread_restarts_total', { worker_id: 'worker_0' }), 2);
  assert.equal(sum(s, 'gunicorn_worker_requests_total'), 12);
  assert.equal(sum(s, 'gunicorn_worker_failed_requests_total', { endpoint: '/crash' }), 1);
  assert.equal(sum(s, 'gunicorn_worker_error_handling_total', { endpoint: '/crash', error_type: 'SyntaxError' }), 1);
  assert.equal(sum(s, 'gunicorn_worker_error_handling_total', { endpoint: '/exit', error_type: 'WorkerThreadExit' }), 1);
});

test('a thread that cannot load the app is a boot error of the process (exit 4 halts the server)', async () => {
  const server = new PromforkProcess([`${path.join(FIXTURES, 'apps', 'behaviours.js')}:nope`, '-b', '127.0.0.1:0', '--no-metrics', ...THREAD]);
  const { code } = await server.exited;
  assert.equal(code, 4);
  assert.match(server.output, /has no export "nope"/);
});
