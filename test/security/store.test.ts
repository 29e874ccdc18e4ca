// The store directory and what is read from it: the `promfork exporter` sidecar makes the primary's checks, reads
// only regular files of this user (no FIFO wedges it, no planted link is read or quoted), takes no pid for a live
// primary that is not one; names in a snapshot must follow Prometheus' grammar, its seq and size are bounded; and
// a directory replaced after the start (by whoever owns a parent) is never written into.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, renameSync, symlinkSync, writeFileSync, chownSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { APP, PromforkProcess, request, startServer } from '../helpers/server.js';
import { startSidecar } from '../helpers/sidecar.js';
import { snapshot } from '../helpers/snapshots.js';
import { NOBODY, makeShared } from '../helpers/other-user.js';
import { until } from '../helpers/poll.js';

const SECRET = 'TOPSECRET-0f3a';

async function get(url: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return request(url, { timeoutMs });
}

test('the sidecar refuses a store directory others can write (one line, exit 1)', async () => {
  const dir = makeShared(mkdtempSync(path.join(os.tmpdir(), 'promfork-open-store-')));
  const p = new PromforkProcess(['exporter', '--multiproc-dir', dir, '--metrics-port', '0', '--metrics-bind', '127.0.0.1']);
  const { code } = await p.exited;
  assert.equal(code, 1, p.output);
  assert.match(p.output, /^Error: --multiproc-dir \S+: the directory is writable by group or others \(mode 1777\); .* \[PROMFORK_ERR_STORE_UNSAFE\]\n$/);
});

test('the sidecar serves on past a planted FIFO, a link to a secret file, a pid-1 run and hostile snapshots', async () => {
  const s = await startServer([APP, '-w', '1']);
  const dir = path.join(s.multiprocDir, 'store');
  const ppid = s.server.pid;
  // A FIFO and a link named like snapshots of the live run, a run "of pid 1", and snapshots a writer with access to
  // the store could plant: a family name with a newline, a huge seq, a value far larger than any snapshot.
  execFileSync('mkfifo', [path.join(dir, `promfork-${ppid}-999991.json`)]);
  const secretFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'promfork-secret-')), 'secret');
  writeFileSync(secretFile, `${SECRET} do not print\n`);
  symlinkSync(secretFile, path.join(dir, `promfork-${ppid}-999992.json`));
  writeFileSync(path.join(dir, 'promfork-1-5.json'), JSON.stringify(snapshot(5, 0, 1, 1, 777)));
  const evil = snapshot(999993, 7, 1, ppid);
  evil.metrics[0]!.name = 'gunicorn_worker_requests_total\ninjected_metric 1\n#';
  writeFileSync(path.join(dir, `promfork-${ppid}-999993.json`), JSON.stringify(evil));
  const badLabel = snapshot(999994, 8, 1, ppid);
  badLabel.metrics[0]!.values[0]!.labels = { 'a"}\ninjected_label_metric 1 #': 'x' };
  writeFileSync(path.join(dir, `promfork-${ppid}-999994.json`), JSON.stringify(badLabel));
  writeFileSync(path.join(dir, `promfork-${ppid}-999995.json`), JSON.stringify(snapshot(999995, 9, 2 ** 52, ppid)));
  writeFileSync(path.join(dir, `promfork-${ppid}-999996.json`), JSON.stringify({ ...snapshot(999996, 10, 1, ppid), pad: 'x'.repeat(9 * 1024 * 1024) }));

  const { proc, metricsUrl } = await startSidecar(['--multiproc-dir', dir]);
  const t0 = Date.now();
  const r = await get(metricsUrl);
  assert.ok(Date.now() - t0 < 3000, 'the scrape is not held by the FIFO');
  assert.equal(r.status, 200, r.body);
  assert.doesNotMatch(r.body, /^injected/m);
  assert.doesNotMatch(r.body, /worker_id="worker_(7|8|9|10)"/, 'no series of a rejected snapshot');
  assert.doesNotMatch(r.body, /\b777\b/, 'the pid-1 "run" is not served');
  assert.match(r.body, /^gunicorn_worker_requests_total\{worker_id="worker_0"\} \d+$/m, 'the real worker is served');
  // Every problem is logged, none quotes what the link points to.
  await until('the problems are logged', () => (/999996\.json: too large/.test(proc.output) ? true : undefined), 10_000, () => proc.output);
  assert.match(proc.output, /999991\.json: not a regular file/);
  assert.match(proc.output, /999992\.json: a symbolic link/);
  assert.match(proc.output, /999993\.json: metric family #0: bad metric name/);
  assert.match(proc.output, /999994\.json: metric family #0: bad label name/);
  assert.match(proc.output, /999995\.json: bad seq 4503599627370496/);
  assert.ok(!proc.output.includes(SECRET), proc.output);
  // TERM ends it at once (no read is stuck on the FIFO).
  const t1 = Date.now();
  proc.proc.kill('SIGTERM');
  assert.equal((await proc.exited).code, 0);
  assert.ok(Date.now() - t1 < 5000);
});

test('a store directory whose parent another user owns is refused at start', async () => {
  const parent = mkdtempSync(path.join(os.tmpdir(), 'promfork-parent-'));
  chownSync(parent, NOBODY, NOBODY);
  const p = new PromforkProcess(['-b', '127.0.0.1:0', '--metrics-port', '0', '--metrics-bind', '127.0.0.1', '--multiproc-dir', path.join(parent, 'store'), APP]);
  const { code } = await p.exited;
  assert.equal(code, 1, p.output);
  assert.match(p.output, new RegExp(`Error: --multiproc-dir \\S+: its parent \\S+ is owned by uid ${NOBODY}, which could replace the store directory; .*\\[PROMFORK_ERR_STORE_UNSAFE\\]`));
});

test('a store directory replaced by a link after the start is never written into', async () => {
  const s = await startServer([APP, '-w', '1', '--metrics-flush-interval', '0.1']);
  const dir = path.join(s.multiprocDir, 'store');
  const elsewhere = mkdtempSync(path.join(os.tmpdir(), 'promfork-elsewhere-'));
  const from = s.server.output.length;
  renameSync(dir, `${dir}.moved`);
  symlinkSync(elsewhere, dir);
  // Requests and scrapes go on: the workers' flushes (every 0.1 s) and the scrapes must refuse the link.
  for (let i = 0; i < 5; i++) assert.equal((await get(`${s.url}/`)).status, 200);
  await get(s.metricsUrl).catch(() => null);
  await until('the refusal is logged', () => (/the path became a symbolic link; nothing is read or written there/.test(s.server.output.slice(from)) ? true : undefined), 10_000, () => s.server.output.slice(from));
  assert.deepEqual(readdirSync(elsewhere), []);
  // Put back, it is used again.
  rmLink(dir);
  renameSync(`${dir}.moved`, dir);
  assert.equal((await get(`${s.url}/`)).status, 200);
  assert.ok(existsSync(dir));
});

function rmLink(p: string): void {
  execFileSync('rm', ['-f', p]);
}


