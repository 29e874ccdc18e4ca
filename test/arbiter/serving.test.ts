// Serving: both app shapes, several workers, malformed requests, the access log, --help/--version/--check-config.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { APP, FIXTURES, PromforkProcess, request, startServer } from '../helpers/server.js';

test('a request listener app is served by every worker', async () => {
  const { server, url } = await startServer([APP, '-w', '2']);
  const workers = server.workerPids();
  assert.equal(workers.length, 2);
  const seen = new Set<number>();
  for (let i = 0; i < 20 && seen.size < 2; i++) {
    const r = await request(`${url}/pid`);
    assert.equal(r.status, 200);
    seen.add(Number(r.body));
  }
  assert.deepEqual([...seen].sort((a, b) => a - b), workers);
});

test('a CommonJS app exported as a promise of its listener is served once the promise resolved', async () => {
  const { server, url } = await startServer([path.join(FIXTURES, 'apps', 'promised-app.cjs')]);
  const r = await request(`${url}/`);
  assert.equal(r.status, 200);
  assert.equal(r.body, `promised ${server.workerPids()[0]}\n`);
});

// The same fetch-style app in the event loop and in worker threads (-k thread).
for (const [kind, kindArgs] of [['async', []], ['thread', ['-k', 'thread', '--threads', '2']]] as const) {
  test(`a fetch-style app (-k ${kind}) gets method, body and headers, and streams its response`, async () => {
    const { url } = await startServer([path.join(FIXTURES, 'apps', 'fetch-app.js'), ...kindArgs]);
    const echo = await request(`${url}/echo`, { method: 'POST', body: 'payload' });
    assert.equal(echo.status, 201);
    assert.equal(echo.body, 'POST payload');
    assert.equal(echo.headers['x-echo'], 'yes');
    const stream = await request(`${url}/stream?n=3`);
    assert.equal(stream.body, 'chunk1\nchunk2\nchunk3\n');
    assert.deepEqual(stream.headers['set-cookie'], ['a=1', 'b=2']);
    const thrown = await request(`${url}/throw`);
    assert.equal(thrown.status, 500);
  });
}

test('a handler that throws or rejects gives 500 and the worker keeps serving', async () => {
  const { server, url } = await startServer([APP]);
  const [pid] = server.workerPids();
  assert.equal((await request(`${url}/throw`)).status, 500);
  assert.equal((await request(`${url}/reject`)).status, 500);
  const after = await request(`${url}/pid`);
  assert.equal(Number(after.body), pid);
  assert.match(server.output, /Error handling request GET \/throw\n.*Error: boom/);
});

test('malformed HTTP gets 400 and never crashes a worker', async () => {
  const { server, port, url } = await startServer([APP]);
  const [pid] = server.workerPids();
  for (const garbage of ['GARBAGE\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 'GET /\x00 HTTP/1.1\r\n\r\n']) {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write(garbage));
      let data = '';
      socket.on('data', (d) => (data += d));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 400 Bad Request/);
  }
  assert.equal(Number((await request(`${url}/pid`)).body), pid);
  assert.deepEqual(server.workerPids(), [pid]);
});

test('the access log writes Gunicorn atoms', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-access-'));
  const file = path.join(dir, 'access.log');
  const { server, url } = await startServer([APP, '--access-logfile', file, '--access-logformat', '%(h)s "%(r)s" %(s)s %(b)s "%(a)s" %(p)s']);
  const [pid] = server.workerPids();
  await request(`${url}/status?code=201`, { headers: { 'user-agent': 'tester/1' } });
  await server.stop();
  assert.equal(readFileSync(file, 'utf8'), `127.0.0.1 "GET /status?code=201 HTTP/1.1" 201 7 "tester/1" <${pid}>\n`);
});

test('--help lists every option with its default; --version prints the version', async () => {
  const help = new PromforkProcess(['--help']);
  assert.equal((await help.exited).code, 0);
  for (const flag of ['--bind', '--workers', '--worker-class', '--threads', '--worker-connections', '--max-requests', '--max-requests-jitter', '--timeout', '--graceful-timeout', '--keep-alive', '--backlog', '--pid', '--access-logfile', '--error-logfile', '--log-level', '--metrics-port', '--metrics-bind', '--multiproc-dir', '--no-metrics', '--config', '--check-config']) {
    assert.ok(help.output.includes(flag), `--help mentions ${flag}`);
  }
  assert.match(help.output, /--backlog N\n.*\n\s+Default: 2048\./);
  const version = new PromforkProcess(['--version']);
  assert.equal((await version.exited).code, 0);
  assert.match(version.output, /^promfork \d+\.\d+\.\d+\n$/);
});

test('--check-config prints the resolved settings and starts nothing', async () => {
  const p = new PromforkProcess(['--check-config', APP, '-w', '3', '-b', '127.0.0.1:9999']);
  const { code } = await p.exited;
  assert.equal(code, 0, p.output);
  assert.match(p.output, /^workers = 3$/m);
  assert.match(p.output, /^bind = \["127\.0\.0\.1:9999"\]$/m);
  assert.doesNotMatch(p.output, /Listening at/);
});
