// Any request-listener app works unchanged in the threads: an Express app with routes, a JSON body, a
// streamed 50 MB download and a 400 MB upload (never buffered whole: the worker's peak memory does not grow
// by the body size, and a client that stops reading stops the app's stream). Fetch-style apps in threads: test/arbiter/serving.test.ts.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, request, startServer } from '../helpers/server.js';

const EXPRESS_APP = path.join(FIXTURES, 'apps', 'thread-express.js') + ':app';
const MiB = 1024 * 1024;

/** Peak resident memory of a process so far (VmHWM), in bytes. */
function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmHWM in /proc/PID/status');
  return Number(m[1]) * 1024;
}

/** GET `url`, counting the body bytes without keeping them. */
function download(url: string): Promise<{ status: number; bytes: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => resolve({ status: res.statusCode!, bytes, headers: res.headers }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

test('an Express app in threads: routes, a JSON body, errors', async () => {
  const { server, url } = await startServer([EXPRESS_APP, '-k', 'thread', '--threads', '2']);
  const [pid] = server.workerPids();

  const user = await request(`${url}/users/42`);
  assert.equal(user.status, 200);
  assert.match(String(user.headers['content-type']), /^application\/json/);
  const body = JSON.parse(user.body) as { id: string; route: string; threadId: number; ip: string };
  assert.equal(body.id, '42');
  assert.equal(body.route, '/users/:id');
  assert.ok(body.threadId > 0, 'served in a worker thread');
  assert.match(body.ip, /127\.0\.0\.1/, 'req.ip comes from the client socket');

  const json = await request(`${url}/json`, {
    method: 'POST',
    body: JSON.stringify({ name: 'promfork', items: [1, 2, 3, 4] }),
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(json.status, 201);
  assert.deepEqual(JSON.parse(json.body), { count: 4, sum: 10, name: 'promfork' });

  const missing = await request(`${url}/nope`);
  assert.equal(missing.status, 404);
  const boom = await request(`${url}/boom`);
  assert.equal(boom.status, 500);
  assert.deepEqual(server.workerPids(), [pid]);
});

test('a streamed 50 MB download from Express: every byte arrives, the worker does not buffer it', async () => {
  const { server, url } = await startServer([EXPRESS_APP, '-k', 'thread', '--threads', '2']);
  const [pid] = server.workerPids();
  // Warm up both threads and the pipe (JIT, buffers), then measure the peak RSS of the worker process.
  for (let i = 0; i < 2; i++) assert.equal((await download(`${url}/download?mb=4`)).bytes, 4 * MiB);
  const before = peakRss(pid);
  const r = await download(`${url}/download?mb=50`);
  const growth = peakRss(pid) - before;
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-length'], String(50 * MiB));
  assert.equal(r.bytes, 50 * MiB);
  // Buffered whole, the body alone would add 50 MB (and its copies across threads more). The response travels
  // in recycled buffers (thread-protocol.ts): nothing piles up for the garbage collector either.
  assert.ok(growth < 20 * MiB, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB during a 50 MiB download`);
});

test('backpressure: a client that stops reading stops the stream in the thread', async () => {
  const { url } = await startServer([EXPRESS_APP, '-k', 'thread', '--threads', '1']);
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get(`${url}/download?mb=200`, { agent: false }, resolve).on('error', reject);
  });
  res.pause();
  // How far the app's stream got, asked of the same (only) thread, until it stops moving. Without
  // backpressure through the pipe it would produce the 200 MiB in about a second, and buffer them.
  const produced = async () => JSON.parse((await request(`${url}/progress`)).body).produced as number;
  let last = -1;
  let stalledAt: number;
  const deadline = Date.now() + 15_000;
  for (;;) {
    stalledAt = await produced();
    if (stalledAt === last) break;
    last = stalledAt;
    assert.ok(Date.now() < deadline, `the stream never stopped (at ${stalledAt} bytes)`);
    await new Promise((r) => setTimeout(r, 250));
  }
  // The window (1 MiB), the streams' high-water marks and the kernel's socket buffers on both sides.
  assert.ok(stalledAt < 24 * MiB, `the app produced ${(stalledAt / MiB).toFixed(1)} MiB for a client that reads nothing`);
  let received = 0;
  res.on('data', (c: Buffer) => (received += c.length));
  res.resume();
  await new Promise((resolve) => res.on('end', resolve));
  assert.equal(received, 200 * MiB);
});

test('a streamed 400 MB upload to Express is hashed as it arrives, never buffered whole', async () => {
  const { server, url } = await startServer([EXPRESS_APP, '-k', 'thread', '--threads', '2']);
  const [pid] = server.workerPids();
  const chunk = Buffer.alloc(MiB);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) & 0xff;
  const upload = (mb: number) =>
    new Promise<{ bytes: number; sha256: string }>((resolve, reject) => {
      const req = http.request(`${url}/upload`, { method: 'POST', agent: false }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve(JSON.parse(text) as { bytes: number; sha256: string }));
      });
      req.on('error', reject);
      let sent = 0;
      const pump = () => {
        while (sent < mb) {
          sent++;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
  await upload(4);
  const before = peakRss(pid);
  const result = await upload(400);
  const growth = peakRss(pid) - before;
  const expected = createHash('sha256');
  for (let i = 0; i < 400; i++) expected.update(chunk);
  assert.equal(result.bytes, 400 * MiB);
  assert.equal(result.sha256, expected.digest('hex'));
  // The socket's read buffers die in the thread that parsed them and are collected in batches, as in an async
  // worker's single thread: the growth is bounded by the collectors' batch size, not by the body. How big a batch
  // is depends on V8: Node 20 and 22 scavenge on external memory pressure (~60 MiB here), Node 24 and 26 wait
  // for a full collection at V8's external-memory limit (100-130 MiB here, for 200 MiB and 400 MiB bodies alike).
  // Buffered whole, the body alone would add 400 MiB.
  assert.ok(growth < 200 * MiB, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB during a 400 MiB upload`);
});
