// The configuration examples of the Python Gunicorn Prometheus Exporter's API reference, translated into examples/, each started for real; and the
// metrics server's auth options through the command line.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { PromforkProcess, ROOT, request, startServer } from '../helpers/server.js';
import { scrape, sum } from '../helpers/metrics.js';

const PLAIN = path.join(ROOT, 'examples', 'plain.js');

test('examples/promfork.basic.config.js (its basic configuration) serves the app and its metrics', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-basic-'));
  const { server, url, metricsUrl } = await startServer(['-c', path.join(ROOT, 'examples', 'promfork.basic.config.js'), '-b', '127.0.0.1:0', PLAIN], {
    env: { PROMETHEUS_METRICS_PORT: '0', PROMETHEUS_BIND_ADDRESS: '127.0.0.1', PROMETHEUS_MULTIPROC_DIR: path.join(dir, 'mp') },
    waitWorkers: 2,
  });
  assert.match(server.output, /Using worker: PrometheusWorker/);
  for (let i = 0; i < 4; i++) assert.equal((await request(`${url}/users/${i}`)).status, 200);
  const s = await scrape(metricsUrl);
  assert.equal(sum(s, 'gunicorn_worker_requests_total'), 4);
  assert.equal(sum(s, 'gunicorn_worker_state', { state: 'running' }), 2);
});

test('basic auth on /metrics: 401 without, 200 with; the password never appears in logs or --check-config', async () => {
  const { server, metricsUrl } = await startServer([PLAIN, '--metrics-basic-auth', 'prom:s3cret-pw']);
  const status = (headers: Record<string, string>) =>
    new Promise<number>((resolve, reject) => {
      http.get(metricsUrl, { headers, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on('error', reject);
    });
  assert.equal(await status({}), 401);
  assert.equal(await status({ authorization: `Basic ${Buffer.from('prom:wrong').toString('base64')}` }), 401);
  assert.equal(await status({ authorization: `Basic ${Buffer.from('prom:s3cret-pw').toString('base64')}` }), 200);
  assert.doesNotMatch(server.output, /s3cret-pw/);
  const check = new PromforkProcess(['--check-config', PLAIN, '--metrics-basic-auth', 'prom:s3cret-pw']);
  assert.equal((await check.exited).code, 0);
  assert.match(check.output, /^metricsBasicAuth = "\*{8}"$/m);
  assert.doesNotMatch(check.output, /s3cret-pw/);
});

test('a taken metrics port: retries, one clear error, and the app keeps serving', async () => {
  const blocker = http.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  try {
    const port = (blocker.address() as { port: number }).port;
    const p = new PromforkProcess(['-b', '127.0.0.1:0', '--metrics-bind', '127.0.0.1', '--metrics-port', String(port), '--log-level', 'debug', PLAIN]);
    const m = await p.waitFor(/Listening at: http:\/\/127\.0\.0\.1:(\d+)/);
    await p.waitFor(/Metrics server not started, the app keeps serving: Error: metrics server cannot listen on 127\.0\.0\.1:\d+: address already in use; choose another --metrics-port or PROMETHEUS_METRICS_PORT \[PROMFORK_ERR_METRICS_SERVER\]/, { timeoutMs: 30_000 });
    assert.equal((await request(`http://127.0.0.1:${m[1]}/`)).status, 200);
    await p.stop();
  } finally {
    blocker.close();
  }
});
