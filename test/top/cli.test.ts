// `promfork top --once` against a real server (127.0.0.1, stopped by pid): one row per seat with the real
// worker pids, exact request and failure counts, the master line; rates under load; auth; and each failure
// as one `Error: ... [CODE]` line with the exit status of a user error.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { APP, loadLoop, request, startServer } from '../helpers/server.js';
import { cells, runTop } from './helpers.js';

const HEADER = ['WORKER', 'PID', 'STATE', 'REQUESTS', 'REQ/S', 'P50', 'P99', 'FAILED', 'FAIL/S', 'MEM', 'CPU', 'UPTIME'];
const ESC = /\x1b/; // eslint-disable-line no-control-regex

function literal(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The frame's lines (the output ends with one newline), checked for the fixed parts. */
function frameLines(stdout: string, metricsUrl: string, seats: number): string[] {
  assert.doesNotMatch(stdout, ESC, 'plain text: no ANSI codes');
  assert.ok(stdout.endsWith('\n') && !stdout.endsWith('\n\n'), JSON.stringify(stdout));
  const lines = stdout.slice(0, -1).split('\n');
  assert.match(lines[0]!, new RegExp(`^promfork top - ${literal(metricsUrl)} - \\d\\d:\\d\\d:\\d\\d - rates over 1\\.\\d\\ds$`));
  assert.equal(lines[2], '');
  assert.deepEqual(cells(lines[3]!), HEADER);
  assert.equal(lines.length, 4 + seats + 1, stdout);
  return lines;
}

test('--once: one row per seat with the real pids, exact counts, the master line', async () => {
  const { server, url, metricsUrl } = await startServer([APP, '--workers', '2']);
  const plan = { ok: 12, thrown: 3, status503: 2 };
  const calls: Promise<unknown>[] = [];
  for (let i = 0; i < plan.ok; i++) calls.push(request(`${url}/`));
  for (let i = 0; i < plan.thrown; i++) calls.push(request(`${url}/throw`));
  for (let i = 0; i < plan.status503; i++) calls.push(request(`${url}/status?code=503`));
  await Promise.all(calls);

  const r = await runTop(['--once', '--url', metricsUrl]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const lines = frameLines(r.stdout, metricsUrl, 2);
  assert.equal(lines[1], 'master: 2 workers, restarts 0, signals: none');
  const rows = lines.slice(4, 6).map(cells);
  assert.deepEqual(rows.map((c) => c[0]), ['worker_0', 'worker_1']);
  assert.deepEqual(rows.map((c) => Number(c[1])).sort((a, b) => a - b), server.workerPids());
  for (const c of rows) {
    assert.equal(c.length, HEADER.length, c.join('|'));
    // No request during the interval: rates 0, no latency.
    assert.deepEqual([c[2], c[4], c[5], c[6], c[8]], ['running', '0.0', '-', '-', '0.0'], c.join('|'));
    assert.match(c[9]!, /^\d+\.\d MiB$/);
    assert.match(c[10]!, /^\d+\.\d%$/);
    assert.match(c[11]!, /^\d+s$/);
  }
  const total = (i: number) => rows.reduce((a, c) => a + Number(c[i]), 0);
  assert.equal(total(3), plan.ok + plan.thrown + plan.status503);
  assert.equal(total(7), plan.thrown + plan.status503);
  assert.deepEqual(cells(lines[6]!), ['total', '17', '0.0', '-', '-', '5', '0.0']);

  // The same server: a path that is not the metrics, and the wrong namespace.
  const notFound = metricsUrl.replace(/\/metrics$/, '/nope');
  const r404 = await runTop(['--once', '--url', notFound]);
  assert.equal(r404.code, 1);
  assert.equal(r404.stdout, '');
  assert.equal(r404.stderr, `Error: ${notFound} answered 404 Not Found; promfork serves the metrics at /metrics: --url http://HOST:PORT/metrics [PROMFORK_ERR_SCRAPE_STATUS]\n`);
  const rNs = await runTop(['--once', '--url', metricsUrl, '--namespace', 'myapp']);
  assert.equal(rNs.code, 1);
  assert.equal(
    rNs.stderr,
    `Error: ${metricsUrl} has no myapp_master_worker_restarts_total metric; the server uses --metrics-namespace gunicorn: run promfork top --namespace gunicorn [PROMFORK_ERR_SCRAPE_FORMAT]\n`,
  );
});

test('--once: the master line counts restarts by reason and signals; rows follow the new pids', async () => {
  const { server, metricsUrl } = await startServer([APP, '--workers', '2']);
  let from = server.output.length;
  server.signal('SIGTTIN');
  await server.waitFor(/Worker booted \(pid:\d+/, { from });
  from = server.output.length;
  process.kill(server.workerPids()[0]!, 'SIGKILL');
  await server.waitFor(/Worker booted \(pid:\d+/, { from });

  const r = await runTop(['--once', '--url', metricsUrl, '--interval', '0.5']);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, ESC);
  const lines = r.stdout.slice(0, -1).split('\n');
  assert.match(lines[0]!, /- rates over 0\.\d\ds$/);
  assert.equal(lines[1], 'master: 3 workers, restarts 1 (killed 1), signals: ttin 1');
  const rows = lines.slice(4, 7).map(cells);
  assert.deepEqual(rows.map((c) => c[0]), ['worker_0', 'worker_1', 'worker_2']);
  assert.deepEqual(rows.map((c) => Number(c[1])).sort((a, b) => a - b), server.workerPids());
  assert.deepEqual(rows.map((c) => c[2]), ['running', 'running', 'running']);
  assert.equal(lines.length, 8);
});

test('--once under load: requests/s and latency for the workers that served', async () => {
  const { url, metricsUrl } = await startServer([APP, '--workers', '2']);
  // Four connections at a time on two async workers: the least-loaded dispatch gives both seats requests.
  const load = loadLoop(`${url}/slow?ms=5`, { concurrency: 4, maxMs: 30_000 });
  let r;
  try {
    r = await runTop(['--once', '--url', metricsUrl, '--interval', '1.5']);
  } finally {
    await load.stop();
  }
  assert.deepEqual(load.failures, []);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.slice(0, -1).split('\n');
  assert.match(lines[0]!, /- rates over 1\.\d\ds$/);
  const rows = lines.slice(4, 6).map(cells);
  for (const c of [...rows, cells(lines[6]!)]) {
    const [requests, rate, p50, p99] = c[0] === 'total' ? c.slice(1, 5) : c.slice(3, 7);
    assert.ok(Number(requests) > 0, c.join('|'));
    assert.ok(Number(rate) > 0, `requests/s > 0: ${c.join('|')}`);
    // /slow?ms=5 takes at least 5 ms: both quantiles are in milliseconds, p99 >= p50.
    assert.match(p50!, /^\d+(\.\d+)?ms$/, c.join('|'));
    assert.match(p99!, /^\d+(\.\d+)?ms$/, c.join('|'));
    assert.ok(parseFloat(p99!) >= parseFloat(p50!), c.join('|'));
    assert.ok(parseFloat(p50!) >= 5, c.join('|'));
  }
});

test('--once with auth: refused without the token, one frame with it', async () => {
  const { metricsUrl } = await startServer([APP, '--metrics-bearer-token', 's3cret']);
  const refused = await runTop(['--once', '--url', metricsUrl]);
  assert.equal(refused.code, 1);
  assert.equal(
    refused.stderr,
    `Error: ${metricsUrl} answered 401 Unauthorized; the metrics server requires auth: give --bearer-token TOKEN, --basic-auth USER:PASSWORD or --header "Authorization: ..." [PROMFORK_ERR_SCRAPE_STATUS]\n`,
  );
  const ok = await runTop(['--once', '--url', metricsUrl, '--bearer-token', 's3cret', '--interval', '0.2']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^master: 1 worker, restarts 0, signals: none$/m);
  const wrong = await runTop(['--once', '--url', metricsUrl, '--header', 'Authorization: Bearer nope']);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /answered 401 Unauthorized; the credentials given were refused: check --bearer-token, --basic-auth or --header \[PROMFORK_ERR_SCRAPE_STATUS\]\n$/);
});

test('an unreachable URL: exit 1 and one line naming the URL, the fix and the code', async () => {
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((r) => probe.close(r));
  const r = await runTop(['--once', '--url', `127.0.0.1:${port}`]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.equal(
    r.stderr,
    `Error: cannot reach http://127.0.0.1:${port}/metrics: connection refused by 127.0.0.1:${port}; check that promfork is running with its metrics server there (--metrics-bind, --metrics-port; default port 9090) and that --url names it [PROMFORK_ERR_SCRAPE_UNREACHABLE]\n`,
  );
  const bad = await runTop(['--once', '--intervall', '2']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, 'Error: unknown option --intervall for promfork top; did you mean --interval? [PROMFORK_ERR_UNKNOWN_OPTION]\n');
});

test('promfork top --help prints its options', async () => {
  const r = await runTop(['--help']);
  assert.equal(r.code, 0);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /^Usage: promfork top \[options\]\n/);
  for (const flag of ['--url URL', '--interval S', '--once', '--namespace NAME', '--timeout S', '--bearer-token TOKEN', '--basic-auth USER:PASS', "--header 'NAME: VALUE'", '--insecure', '--cacert FILE', '--cert FILE, --key FILE', '-h, --help']) {
    assert.ok(r.stdout.includes(`\n  ${flag} `), flag);
  }
});
