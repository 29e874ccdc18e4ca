// The live view with stdout not a terminal: frames printed one after another (no ANSI codes), rates from
// consecutive scrapes, a failed scrape shown in the frame above the last good rows and retried until the
// endpoint answers again; SIGINT ends it with status 0. The endpoint is a small local server (127.0.0.1).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { cells, TopProcess } from './helpers.js';

const ESC = /\x1b/; // eslint-disable-line no-control-regex

function exposition(requests: number): string {
  return [
    '# TYPE gunicorn_worker_requests_total counter',
    `gunicorn_worker_requests_total{worker_id="worker_0"} ${requests}`,
    '# TYPE gunicorn_worker_state gauge',
    'gunicorn_worker_state{worker_id="worker_0",state="running",timestamp="1700000000"} 1',
    '# TYPE promfork_worker_pid gauge',
    'promfork_worker_pid{worker_id="worker_0"} 4242',
    '# TYPE gunicorn_master_worker_restarts_total counter',
    'gunicorn_master_worker_restarts_total 0',
    '',
  ].join('\n');
}

function frames(stdout: string): string[][] {
  return stdout
    .split(/^(?=promfork top - )/m)
    .filter((f) => f !== '')
    .map((f) => f.replace(/\n+$/, '').split('\n'));
}

test('frames one after another; a failed scrape is shown and retried until the endpoint is back', async () => {
  let requests = 0;
  const server = http.createServer((_req, res) => {
    requests += 10;
    res.end(exposition(requests));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}/metrics`;
  const top = new TopProcess(['--url', url, '--interval', '0.2']);
  try {
    const good = (f: string[]) => f.length === 6 && cells(f[4]!)[0] === 'worker_0';
    await top.waitForOutput((out) => frames(out).filter(good).length >= 2);
    const [first, second] = frames(top.stdout);
    assert.match(first![0]!, new RegExp(`^promfork top - ${url.replace(/[.]/g, '\\.')} - \\d\\d:\\d\\d:\\d\\d - rates from the next frame$`));
    assert.deepEqual(cells(first![4]!), ['worker_0', '4242', 'running', '10', '-', '-', '-', '0', '-', '-', '-', '-']);
    assert.match(second![0]!, / - rates over 0\.\d\ds$/);
    const row = cells(second![4]!);
    assert.equal(row[3], '20');
    assert.ok(Number(row[4]) > 0, row.join('|'));
    assert.equal(second![1], 'master: 1 worker, restarts 0, signals: none');

    // The endpoint goes away: the error under the header, the last good rows kept, retried every tick.
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    const errorLine = new RegExp(
      `^error at \\d\\d:\\d\\d:\\d\\d: cannot reach ${url.replace(/[.]/g, '\\.')}: connection refused by 127\\.0\\.0\\.1:${port}; .* \\[PROMFORK_ERR_SCRAPE_UNREACHABLE\\]; retrying every 0\\.2s$`,
    );
    const failed = (f: string[]) => errorLine.test(f[1] ?? '');
    await top.waitForOutput((out) => frames(out).filter(failed).length >= 2);
    const failure = frames(top.stdout).find(failed)!;
    assert.equal(failure.length, 7);
    assert.equal(failure[2], 'master: 1 worker, restarts 0, signals: none');
    assert.equal(cells(failure[5]!)[0], 'worker_0');

    // Back on the same port: frames with rows again, rates over the time since the last good scrape.
    const count = frames(top.stdout).length;
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    await top.waitForOutput((out) => frames(out).slice(count).some(good));
    const back = frames(top.stdout).slice(count).find(good)!;
    assert.equal(cells(back[4]!)[3], String(requests));
    assert.doesNotMatch(top.stdout, ESC);
    assert.equal(top.stderr, '');
    top.proc.kill('SIGINT');
    const end = await top.exited;
    assert.deepEqual([end.code, end.signal], [0, null]);
  } finally {
    top.proc.kill('SIGKILL');
    server.closeAllConnections();
    server.close();
  }
});
