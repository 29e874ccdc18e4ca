// Idle and slow clients against every worker class: a connection that sends nothing, or trickles its request
// head, never occupies a sync worker and is closed at the header deadline (--timeout); connections beyond
// --worker-connections wait in the kernel's queue (bounded by --backlog), never in the primary; idle
// keep-alive connections are closed after --keep-alive. Before, two silent connections took a `-k sync -w 2`
// server down (each held a worker until --timeout, then the primary killed it) and async workers kept
// silent connections ~85 s.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { test } from 'node:test';
import { APP, request, startServer } from '../helpers/server.js';
import { needTool, requireTool } from '../helpers/tools.js';

interface Client {
  socket: net.Socket;
  /** Resolves with the ms from connect to the server closing the connection, and what it sent. */
  closed: Promise<{ ms: number; data: string }>;
}

function idleClient(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (d: Buffer) => (data += d));
    socket.on('error', () => {});
    socket.once('connect', () => {
      const t0 = performance.now();
      const closed = new Promise<{ ms: number; data: string }>((done) =>
        socket.once('close', () => done({ ms: performance.now() - t0, data })),
      );
      resolve({ socket, closed });
    });
    socket.once('error', reject);
  });
}

/** Sends a request head one byte every `everyMs`, never finishing it. */
async function tricklingClient(port: number, everyMs: number): Promise<Client> {
  const c = await idleClient(port);
  c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
  const timer = setInterval(() => {
    if (!c.socket.destroyed) c.socket.write('X');
  }, everyMs);
  void c.closed.then(() => clearInterval(timer));
  return c;
}

/** What Node's HTTP server sends a connection whose request head did not arrive in time: nothing, or a 408. */
function assertTimedOut(data: string): void {
  assert.match(data, /^(HTTP\/1\.1 408 Request Timeout\r\n[^]*)?$/);
}

function assertNoWorkerTimeout(output: string): void {
  assert.doesNotMatch(output, /WORKER TIMEOUT/);
  assert.doesNotMatch(output, /was sent SIG(ABRT|KILL)/);
}

/** Established connections on the app port held by `pid` (ss -tnp). */
function connectionsOf(pid: number, port: number): number {
  const out = execFileSync(requireTool('ss'), ['-Htnp', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
  return [...out.matchAll(/pid=(\d+)/g)].filter((m) => Number(m[1]) === pid).length;
}

test('-k sync -w 2: silent connections never occupy a worker, requests are served, they are closed at --timeout', async () => {
  const { server, port, url } = await startServer([APP, '-k', 'sync', '-w', '2', '--timeout', '2']);
  const workers = server.workerPids();
  const idle = await Promise.all(Array.from({ length: 6 }, () => idleClient(port)));
  // Served at once, one request after the other, while six silent connections are open (before: none).
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    const r = await request(`${url}/`, { timeoutMs: 5000 });
    assert.equal(r.status, 200);
    assert.ok(performance.now() - t0 < 1000, `request ${i} took ${Math.round(performance.now() - t0)} ms`);
  }
  for (const c of idle) {
    const { ms, data } = await c.closed;
    assertTimedOut(data);
    assert.ok(ms > 1900 && ms < 4500, `a silent connection was closed after ${Math.round(ms)} ms (--timeout 2)`);
  }
  assert.deepEqual(server.workerPids(), workers, 'no worker was replaced');
  assertNoWorkerTimeout(server.output);
});

test('-k sync: a client that trickles its request head is answered 408 at --timeout without costing a worker', async () => {
  const { server, port, url } = await startServer([APP, '-k', 'sync', '-w', '1', '--timeout', '2']);
  const slow = await Promise.all([tricklingClient(port, 200), tricklingClient(port, 200)]);
  // The only worker keeps serving while both heads trickle in.
  for (let i = 0; i < 5; i++) assert.equal((await request(`${url}/`, { timeoutMs: 3000 })).status, 200);
  for (const c of slow) {
    const { ms, data } = await c.closed;
    assert.match(data, /^HTTP\/1\.1 408 /);
    assert.ok(ms > 1900 && ms < 4500, `closed after ${Math.round(ms)} ms`);
  }
  assert.equal(server.workerPids().length, 1);
  assertNoWorkerTimeout(server.output);
});

for (const kind of ['async', 'thread']) {
  test(`-k ${kind}: a silent connection is closed at --timeout, an idle keep-alive one after --keep-alive`, async () => {
    const { server, port } = await startServer([APP, '-k', kind, '-w', '1', '--timeout', '2', '--keep-alive', '1']);
    const silent = await idleClient(port);
    const kept = await idleClient(port);
    kept.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const s = await silent.closed;
    assertTimedOut(s.data);
    assert.ok(s.ms > 1900 && s.ms < 4500, `the silent connection was closed after ${Math.round(s.ms)} ms`);
    const k = await kept.closed;
    assert.match(k.data, /^HTTP\/1\.1 200 /);
    assert.ok(k.ms > 900 && k.ms < 3500, `the idle keep-alive connection was closed after ${Math.round(k.ms)} ms`);
    assertNoWorkerTimeout(server.output);
  });
}

test('connections beyond --worker-connections wait in the kernel queue, not in the primary, and are served', async (t) => {
  if (!needTool(t, 'ss')) return;
  const { server, port, url } = await startServer([APP, '-w', '1', '--worker-connections', '4', '--timeout', '2']);
  const [worker] = server.workerPids();
  const idle = await Promise.all(Array.from({ length: 12 }, () => idleClient(port)));
  const queued = () => Number(execFileSync(requireTool('ss'), ['-Hltn', `( sport = :${port} )`], { encoding: 'utf8' }).trim().split(/\s+/)[1]);
  // The worker holds its cap; the other 8 are in the listening socket's queue; the primary holds none.
  assert.equal(connectionsOf(worker!, port), 4);
  assert.equal(connectionsOf(server.pid, port), 0);
  assert.equal(queued(), 8);
  // Every silent connection is taken and closed in turn (4 per --timeout), then a request is served.
  for (const c of idle) assertTimedOut((await c.closed).data);
  assert.equal((await request(`${url}/`, { timeoutMs: 5000 })).status, 200);
  assertNoWorkerTimeout(server.output);
});
