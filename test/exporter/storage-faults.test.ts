// Storage faults: unsafe or unusable store directories are refused with one clear line; a corrupt
// snapshot or a failing write (a real EFBIG from a file-size limit, as a full disk) is logged and
// counted, requests are unaffected, and no counter steps back or is counted twice.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { APP, PromforkProcess, request, startServer } from '../helpers/server.js';
import { scrape, sum } from '../helpers/metrics.js';

function tempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'promfork-faults-'));
}

async function expectRefused(dir: string, line: RegExp, code: string): Promise<void> {
  const p = new PromforkProcess(['-b', '127.0.0.1:0', '--metrics-port', '0', '--multiproc-dir', dir, APP]);
  const { code: exit } = await p.exited;
  assert.equal(exit, 1, p.output);
  const errors = p.output.split('\n').filter((l) => l.startsWith('Error:'));
  assert.equal(errors.length, 1, p.output);
  assert.match(errors[0]!, line);
  assert.ok(errors[0]!.endsWith(`[${code}]`), errors[0]);
  assert.doesNotMatch(p.output, /^\s+at /m);
  assert.doesNotMatch(p.output, /Booting worker/);
}

test('a foreign-owned store directory is refused with one line naming it and the fix', async () => {
  const dir = path.join(tempDir(), 'store');
  mkdirSync(dir, { mode: 0o700 });
  chownSync(dir, 65534, 65534);
  await expectRefused(dir, new RegExp(`--multiproc-dir ${dir}: .*(owned by|another user)`), 'PROMFORK_ERR_STORE_UNSAFE');
});

test('a world-writable store directory is refused', async () => {
  const dir = path.join(tempDir(), 'store');
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  await expectRefused(dir, /writable by group or others \(mode 0777\); run chmod 700/, 'PROMFORK_ERR_STORE_UNSAFE');
});

test('an unusable store path (under a regular file) is refused', async () => {
  const file = path.join(tempDir(), 'plain-file');
  writeFileSync(file, 'x');
  await expectRefused(path.join(file, 'store'), /--multiproc-dir .*plain-file\/store/, 'PROMFORK_ERR_STORE_DIR');
});

test('foreign files are kept; a corrupt snapshot is served from the last good read and counted', async () => {
  const dir = path.join(tempDir(), 'store');
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(path.join(dir, 'counter_1.db'), 'not ours');
  const { server, url, metricsUrl } = await startServer([APP, '--multiproc-dir', dir]);
  assert.match(server.output, /\[WARNING\].*counter_1\.db/);
  for (let i = 0; i < 5; i++) assert.equal((await request(`${url}/`)).status, 200);
  assert.equal(sum(await scrape(metricsUrl), 'gunicorn_worker_requests_total'), 5);
  const [worker] = server.workerPids();
  // Freeze the worker so it cannot rewrite its snapshot, corrupt the file, then kill it: the fold must
  // read the corrupt file, count the error, and keep the values of the last good read.
  process.kill(worker!, 'SIGSTOP');
  writeFileSync(path.join(dir, `promfork-${server.pid}-${worker}.json`), '{ not json');
  const from = server.output.length;
  process.kill(worker!, 'SIGKILL');
  await server.waitFor(/Worker booted/, { from });
  await server.waitFor(new RegExp(`cannot read the snapshot of worker ${worker}`), { from });
  const s = await scrape(metricsUrl);
  assert.equal(sum(s, 'gunicorn_worker_requests_total'), 5);
  assert.equal(sum(s, 'promfork_store_errors_total', { process: 'primary' }), 1);
  assert.equal((await request(`${url}/`)).status, 200);
  const after = await scrape(metricsUrl);
  assert.equal(sum(after, 'gunicorn_worker_requests_total'), 6);
  assert.equal(sum(after, 'promfork_held_decreases_total'), 0);
  assert.ok(readdirSync(dir).includes('counter_1.db'));
});

test('a failing snapshot write (EFBIG, as a full disk) never fails a request and never lowers a counter', async () => {
  const dir = path.join(tempDir(), 'store');
  // 8 KiB per file: the first snapshots fit; growing the snapshot past it makes every write fail.
  const { server, url, metricsUrl } = await startServer([APP, '--multiproc-dir', dir, '--endpoint-cap', '500'], {
    wrapper: ['/bin/sh', '-c', 'ulimit -f 16; exec "$0" "$@"'],
  });
  for (let i = 0; i < 3; i++) assert.equal((await request(`${url}/`)).status, 200);
  const before = await scrape(metricsUrl);
  assert.equal(sum(before, 'gunicorn_worker_requests_total'), 3);
  // 200 failures with distinct endpoints make the snapshot far larger than 8 KiB.
  const letters = (i: number) => i.toString(26).replace(/\d/g, (d) => 'qrstuvwxyz'[Number(d)]!);
  const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => request(`${url}/fail/${letters(i)}x`)));
  assert.deepEqual(new Set(replies.map((r) => r.status)), new Set([500]));
  for (let i = 0; i < 10; i++) assert.equal((await request(`${url}/`)).status, 200);
  const during = await scrape(metricsUrl);
  // Only persisted values are exposed: the last good snapshot, never less.
  assert.equal(sum(during, 'gunicorn_worker_requests_total'), 3);
  assert.ok(sum(during, 'promfork_store_errors_total', { process: 'worker' }) >= 1);
  await server.waitFor(/\[WARNING\] metrics: cannot write the snapshot \(1 failures so far\):.*EFBIG|File too large/);
});
