// Hooks and the access log with the thread worker: preRequest/postRequest run in the handler thread with the
// real request and response (Gunicorn runs them in the pool thread), the others in the process's main thread;
// the access log gets one line per request, written by the main thread.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, request, startServer } from '../helpers/server.js';

const APP = path.join(FIXTURES, 'apps', 'thread-app.js') + ':app';
const CONFIG = path.join(FIXTURES, 'apps', 'thread-hooks.config.js');

test('preRequest/postRequest run in the thread that serves the request; boot hooks in the main thread', async () => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'promfork-thread-hooks-')), 'hooks.log');
  const { server, url } = await startServer(['-c', CONFIG, APP, '-k', 'thread', '--threads', '2'], { env: { HOOK_LOG: file } });
  const [pid] = server.workerPids();
  const served: number[] = [];
  for (let i = 0; i < 4; i++) served.push((JSON.parse((await request(`${url}/who`)).body) as { threadId: number }).threadId);
  await server.stop();
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  assert.deepEqual(lines.slice(0, 2), [`${pid} 0 postFork threads=2`, `${pid} 0 postWorkerInit threads=2`]);
  const pre = lines.filter((l) => l.includes('preRequest'));
  const post = lines.filter((l) => l.includes('postRequest'));
  assert.equal(pre.length, 4);
  assert.equal(post.length, 4);
  for (const line of pre) {
    const [p, tid] = line.split(' ').map(Number);
    assert.equal(p, pid);
    assert.ok(tid! > 0, `preRequest ran in a worker thread: ${line}`);
    assert.match(line, new RegExp(`preRequest /who seat=0 thread=${tid}$`));
    assert.ok(served.includes(tid!), `the thread that ran preRequest served a request: ${line}`);
  }
  for (const line of post) assert.match(line, /^\d+ [1-9]\d* postRequest \/who 200 nr=[1-4]$/);
  assert.equal(lines.at(-1), `${pid} 0 workerExit`);
});

test('the access log gets one line per request served in threads', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-thread-access-'));
  const file = path.join(dir, 'access.log');
  const { server, url } = await startServer([
    APP, '-k', 'thread', '--threads', '2', '--access-logfile', file,
    '--access-logformat', '%(h)s "%(r)s" %(s)s %(b)s "%(a)s" %(p)s',
  ]);
  const [pid] = server.workerPids();
  await request(`${url}/status?code=201`, { headers: { 'user-agent': 'tester/1' } });
  await request(`${url}/echo`, { method: 'POST', body: 'x'.repeat(100), headers: { 'user-agent': 'tester/2' } });
  await server.stop();
  assert.equal(
    readFileSync(file, 'utf8'),
    `127.0.0.1 "GET /status?code=201 HTTP/1.1" 201 7 "tester/1" <${pid}>\n` +
      `127.0.0.1 "POST /echo HTTP/1.1" 200 100 "tester/2" <${pid}>\n`,
  );
});
