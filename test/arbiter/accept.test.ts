// The accept path: workers accept from the listening sockets the primary bound (the primary never accepts
// from them), --worker-connections stops a worker's accepting at its cap, --backlog is the socket's backlog,
// connections queued in the kernel outlive workers, a HUP keeps (or swaps) the sockets without dropping any.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { until } from '../helpers/poll.js';
import { freePort } from '../helpers/ports.js';
import { APP, loadLoop, request, startServer } from '../helpers/server.js';
import { needTool, requireTool } from '../helpers/tools.js';

/** Pids of the processes holding established connections whose local port is `port` (ss -tnp). */
function connectionOwners(port: number): number[] {
  const out = execFileSync(requireTool('ss'), ['-Htnp', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
  return [...out.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
}

/** Recv-Q and Send-Q of the LISTEN socket on `port` (ss): the connections queued, and the backlog. */
function listenSocket(port: number): { queued: number; backlog: number } {
  const cols = execFileSync(requireTool('ss'), ['-Hltn', `( sport = :${port} )`], { encoding: 'utf8' }).trim().split(/\s+/);
  return { queued: Number(cols[1]), backlog: Number(cols[2]) };
}

const listenBacklog = (port: number): number => listenSocket(port).backlog;
const listenQueue = (port: number): number => listenSocket(port).queued;

function stopProcesses(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) process.kill(pid, sig);
}

test('workers accept connections themselves: the primary holds none', async (t) => {
  if (!needTool(t, 'ss')) return;
  const { server, port, url } = await startServer([APP, '-w', '2']);
  const workers = server.workerPids();
  // Slow requests keep their connections open while we look at who holds them.
  const replies = Promise.all(Array.from({ length: 8 }, () => request(`${url}/slow?ms=1500`)));
  const owners = await until('8 connections are established', () => {
    const o = connectionOwners(port);
    return o.length === 8 ? o : undefined;
  });
  assert.ok(!owners.includes(server.pid), 'the primary accepted a connection');
  for (const pid of owners) assert.ok(workers.includes(pid), `connection held by ${pid}, not a worker`);
  const bodies = (await replies).map((r) => r.body);
  for (const b of bodies) assert.match(b, /^slow \d+\n$/);
  // (Which worker takes how many depends on the scheduler: the share under load is a benchmark figure,
  // bench/accept.ts; that every worker takes connections is shown by the --worker-connections test.)
  for (const b of bodies) assert.ok(workers.includes(Number(/\d+/.exec(b)![0])));
});

test('a connection that arrives while no worker accepts waits in the kernel queue and is served', async (t) => {
  if (!needTool(t, 'ss')) return;
  const { server, port, url } = await startServer([APP, '-w', '2']);
  const workers = server.workerPids();
  stopProcesses(workers, 'SIGSTOP');
  let reply: Promise<{ status: number }>;
  try {
    reply = request(`${url}/`);
    // The handshake completes (the socket listens) but nobody accepts: the primary does not poll it.
    await until('the connection is queued', () => {
      const out = execFileSync(requireTool('ss'), ['-Hltn', `( sport = :${port} )`], { encoding: 'utf8' }).trim();
      return Number(out.split(/\s+/)[1]) === 1 ? true : undefined;
    });
    assert.deepEqual(connectionOwners(port), []);
  } finally {
    stopProcesses(workers, 'SIGCONT');
  }
  assert.equal((await reply).status, 200);
});

test('-k sync: a worker stops accepting while it serves a request, so the queue waits for idle workers', async (t) => {
  if (!needTool(t, 'ss')) return;
  const { server, port, url } = await startServer([APP, '-k', 'sync', '-w', '3']);
  const workers = server.workerPids();
  assert.equal(workers.length, 3);
  const [first, ...others] = workers as [number, number, number];
  stopProcesses(workers, 'SIGSTOP');
  const replies = Array.from({ length: 3 }, () => request(`${url}/slow?ms=1000`));
  try {
    await until('3 connections queued', () => (listenQueue(port) === 3 ? true : undefined));
    // One worker runs. It takes one connection and, while that request awaits its second, leaves the other two in
    // the kernel queue (an eager worker would take them in its next loop turns and serve them in turn).
    stopProcesses([first], 'SIGCONT');
    const firstDone = await Promise.race(replies);
    assert.equal(firstDone.body, `slow ${first}\n`);
    const queued = listenQueue(port);
    // By now it may have taken one more (it is idle again), never both.
    assert.ok(queued >= 1, `${queued} connection(s) left in the queue when the first request was answered`);
  } finally {
    stopProcesses(others, 'SIGCONT');
  }
  const done = await Promise.all(replies);
  assert.deepEqual(done.map((r) => r.status), [200, 200, 200]);
});

/** A client that connects now and sends its request head only when told (a client scheduled late). */
function lateClient(port: number, target: string): Promise<{ send(): void; reply: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const reply = new Promise<string>((done, fail) => {
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', () => done(Buffer.concat(chunks).toString('latin1')));
      socket.on('error', fail);
    });
    socket.once('error', reject);
    socket.once('connect', () => resolve({ send: () => socket.write(`GET ${target} HTTP/1.1\r\nHost: t\r\n\r\n`), reply }));
  });
}

test('-k sync: a client that sends its head a few ms after connecting does not let one worker take a whole burst', async (t) => {
  if (!needTool(t, 'ss')) return;
  const { server, port } = await startServer([APP, '-k', 'sync', '-w', '2']);
  const workers = server.workerPids();
  const [first, second] = workers as [number, number];
  stopProcesses(workers, 'SIGSTOP');
  let clients: Awaited<ReturnType<typeof lateClient>>[];
  try {
    clients = await Promise.all(Array.from({ length: 4 }, () => lateClient(port, '/slow?ms=1000')));
    await until('4 connections queued', () => (listenQueue(port) === 4 ? true : undefined));
    // One worker runs alone for 15 ms (the other is not scheduled yet), then the clients send their heads. An
    // eager worker takes all four in that time (one per loop turn once the one it reads stayed silent for a turn)
    // and serves them one after the other: 4 s, while the other worker is idle.
    stopProcesses([first], 'SIGCONT');
    await new Promise((r) => setTimeout(r, 15));
  } finally {
    stopProcesses([second, first], 'SIGCONT'); // both, also when a step above failed
  }
  const t0 = Date.now();
  for (const c of clients) c.send();
  const replies = await Promise.all(clients.map((c) => c.reply));
  const elapsed = Date.now() - t0;
  const servedBy = replies.map((r) => {
    assert.match(r, /^HTTP\/1\.1 200 /);
    return Number(/slow (\d+)\n$/.exec(r)?.[1]);
  });
  const perWorker = workers.map((pid) => servedBy.filter((p) => p === pid).length);
  assert.deepEqual(perWorker, [2, 2], `requests served per worker ${workers.join(', ')}`);
  assert.ok(elapsed >= 1900 && elapsed < 3500, `took ${elapsed} ms`);
});

test('--backlog is the listening socket backlog, also after workers re-listen at their cap', async (t) => {
  if (!needTool(t, 'ss')) return;
  const { port, url } = await startServer([APP, '-w', '2', '--backlog', '37', '--worker-connections', '1']);
  assert.equal(listenBacklog(port), 37);
  // Each worker reaches its cap (closes its copy) and takes the sockets again afterwards.
  const replies = await Promise.all(Array.from({ length: 4 }, () => request(`${url}/slow?ms=300`)));
  for (const r of replies) assert.equal(r.status, 200);
  assert.equal((await request(`${url}/`)).status, 200);
  assert.equal(listenBacklog(port), 37);
});

test('--worker-connections: a worker at its cap stops accepting, the others take the connections, the rest wait', async () => {
  const { server, url } = await startServer([APP, '-w', '2', '--worker-connections', '1']);
  const t0 = performance.now();
  const times: number[] = [];
  const replies = await Promise.all(
    Array.from({ length: 4 }, () =>
      request(`${url}/slow?ms=1000`).then((r) => {
        times.push(performance.now() - t0);
        return r;
      }),
    ),
  );
  for (const r of replies) assert.equal(r.status, 200);
  const pids = replies.map((r) => Number(/\d+/.exec(r.body)![0]));
  const workers = server.workerPids();
  // One connection at a time per worker: two run at once, the other two wait in the kernel queue.
  for (const w of workers) assert.equal(pids.filter((p) => p === w).length, 2, `worker ${w} served 2 of ${pids}`);
  times.sort((a, b) => a - b);
  assert.ok(times[1]! < 1900, `the first two answered at ${times.slice(0, 2).map(Math.round)} ms`);
  assert.ok(times[2]! >= 1900, `the last two waited for a free worker: ${times.slice(2).map(Math.round)} ms`);
});

test('a unix socket bind is served by the workers accepting from it', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-unix-'));
  const sock = path.join(dir, 'app.sock');
  const { server } = await startServer([APP, '-w', '2', '-b', `unix:${sock}`, '-b', '127.0.0.1:0']);
  const get = () =>
    new Promise<string>((resolve, reject) => {
      http
        .get({ socketPath: sock, path: '/slow?ms=400', agent: false }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d));
          res.on('end', () => resolve(body));
        })
        .on('error', reject);
    });
  const bodies = await Promise.all(Array.from({ length: 6 }, get));
  const workers = server.workerPids();
  for (const b of bodies) assert.ok(workers.includes(Number(/^slow (\d+)\n$/.exec(b)![1])), b);
});

for (const kind of ['async', 'sync', 'thread']) {
  test(`HUP under keep-alive and connection-per-request load (-k ${kind}): zero failed requests`, async () => {
    const { server, url } = await startServer([APP, '-w', '2', '-k', kind]);
    const before = server.workerPids();
    const perRequest = loadLoop(`${url}/`, { concurrency: 3, maxMs: 30_000 });
    const keepAlive = keepAliveLoop(`${url}/`, 3);
    const from = server.output.length;
    server.signal('SIGHUP');
    await server.waitForCount(/Worker booted/, 2, { from });
    await server.waitForCount(/Worker exiting \(pid: \d+\)/, 2, { from });
    const sent = perRequest.sent + keepAlive.sent;
    while (perRequest.sent + keepAlive.sent < sent + 100) await new Promise((r) => setTimeout(r, 20));
    await Promise.all([perRequest.stop(), keepAlive.stop()]);
    const after = server.workerPids();
    for (const pid of after) assert.ok(!before.includes(pid), `worker ${pid} is new`);
    assert.deepEqual(perRequest.failures, []);
    assert.deepEqual(keepAlive.failures, []);
    assert.ok(keepAlive.sent > 50 && perRequest.sent > 50);
  });
}

test('HUP that changes the bind: the new address serves, requests queued on the old one are not dropped', async (t) => {
  if (!needTool(t, 'ss')) return;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-rebind-'));
  const conf = path.join(dir, 'promfork.json');
  const [oldPort, newPort] = [await freePort(), await freePort()];
  writeFileSync(conf, JSON.stringify({ bind: [`127.0.0.1:${oldPort}`] }));
  const { server } = await startServer([APP, '-w', '2', '-c', conf], { autoBind: false });
  const oldWorkers = server.workerPids();
  // Nobody accepts while the old workers are stopped: these wait in the old socket's queue.
  stopProcesses(oldWorkers, 'SIGSTOP');
  const queued = Array.from({ length: 3 }, () => request(`http://127.0.0.1:${oldPort}/`));
  await until('3 connections queued on the old socket', () => {
    const out = execFileSync(requireTool('ss'), ['-Hltn', `( sport = :${oldPort} )`], { encoding: 'utf8' }).trim();
    return Number(out.split(/\s+/)[1]) === 3 ? true : undefined;
  });
  writeFileSync(conf, JSON.stringify({ bind: [`127.0.0.1:${newPort}`] }));
  const from = server.output.length;
  server.signal('SIGHUP');
  await server.waitFor(new RegExp(`Listening at: http://127.0.0.1:${newPort}`), { from });
  await server.waitForCount(/Worker booted/, 2, { from });
  // The old workers never accept again: only the primary can still serve what is queued on the old socket.
  stopProcesses(oldWorkers, 'SIGKILL');
  for (const r of await Promise.all(queued)) assert.equal(r.status, 200);
  assert.equal((await request(`http://127.0.0.1:${newPort}/`)).status, 200);
  // Once the old workers are gone, the old socket is closed.
  await until('the old workers are gone', () => (server.workerPids().some((p) => oldWorkers.includes(p)) ? undefined : true));
  await until('the old address refuses connections', () =>
    request(`http://127.0.0.1:${oldPort}/`).then(
      () => undefined,
      (err: NodeJS.ErrnoException) => (err.code === 'ECONNREFUSED' ? true : undefined),
    ),
  );
});

/** `concurrency` loops of requests over keep-alive connections (one agent), until stop(). */
function keepAliveLoop(url: string, concurrency: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let running = true;
  let sent = 0;
  const failures: string[] = [];
  const one = () =>
    new Promise<void>((resolve) => {
      http
        .get(url, { agent }, (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode !== 200) failures.push(`status ${res.statusCode}`);
            resolve();
          });
        })
        .on('error', (err) => {
          failures.push(err.message);
          resolve();
        });
    });
  const done = Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (running) {
        sent++;
        await one();
      }
    }),
  );
  return {
    get sent() {
      return sent;
    },
    failures,
    async stop() {
      running = false;
      await done;
      agent.destroy();
    },
  };
}


test('HUP that adds a bind keeps the other sockets: a unix socket is neither closed nor unlinked', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-keep-'));
  const sock = path.join(dir, 'app.sock');
  const conf = path.join(dir, 'promfork.json');
  const [tcpPort, addedPort] = [await freePort(), await freePort()];
  writeFileSync(conf, JSON.stringify({ bind: [`unix:${sock}`, `127.0.0.1:${tcpPort}`] }));
  const { server } = await startServer([APP, '-w', '2', '-c', conf], { autoBind: false });
  const inode = statSync(sock).ino;
  writeFileSync(conf, JSON.stringify({ bind: [`unix:${sock}`, `127.0.0.1:${tcpPort}`, `127.0.0.1:${addedPort}`] }));
  const from = server.output.length;
  server.signal('SIGHUP');
  await server.waitFor(new RegExp(`Listening at: http://127.0.0.1:${addedPort}`), { from });
  await server.waitForCount(/Worker exiting \(pid: \d+\)/, 2, { from });
  // Only the added bind is announced; the kept sockets are the same ones (same file), still served.
  assert.doesNotMatch(server.output.slice(from), new RegExp(`Listening at: (unix:|http://127.0.0.1:${tcpPort})`));
  assert.equal(statSync(sock).ino, inode);
  const viaUnix = await new Promise<number>((resolve, reject) => {
    http.get({ socketPath: sock, path: '/', agent: false }, (res) => resolve(res.statusCode!)).on('error', reject);
  });
  assert.equal(viaUnix, 200);
  assert.equal((await request(`http://127.0.0.1:${tcpPort}/`)).status, 200);
  assert.equal((await request(`http://127.0.0.1:${addedPort}/`)).status, 200);
});
