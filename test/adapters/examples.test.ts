// The framework examples (examples/{plain,express,fastify,koa,hono}.js), each started with the real CLI: the
// `endpoint` label is the framework's route template (never the concrete id), error_type is the class of the
// error the framework answered itself (via the promfork adapters), a 5xx without an error is http_503, and
// every request is counted exactly once; with the async and the thread worker.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT, request, startServer } from '../helpers/server.js';
import { scrape, seriesOf, sum, type Scrape } from '../helpers/metrics.js';

const EXAMPLES = ['plain', 'express', 'fastify', 'koa', 'hono'];

// The shape every example shares: [path, expected status], sent once each.
const PLAN: [string, number][] = [
  ...[1, 2, 3, 4, 5].map((id): [string, number] => [`/users/${id}`, 200]),
  ['/orders/7', 200],
  ['/orders/8', 200],
  ['/orders/41', 500],
  ['/orders/42', 500],
  ['/orders/57', 500],
  ['/health/api', 200],
  ['/health/db', 503],
  ['/health/db', 503],
  ['/no/such/route', 404],
];

/** Scrape until requests_total reaches `total`: workers count a request when its response closed. */
async function scrapeUntil(metricsUrl: string, total: number, timeoutMs = 10_000): Promise<Scrape> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await scrape(metricsUrl);
    if (sum(s, 'gunicorn_worker_requests_total') >= total || Date.now() > deadline) return s;
  }
}

// The thread worker runs the app in worker_threads and counts in the main thread: the adapters' route and
// error travel back with each failed request's report.
const KINDS: [string, string[]][] = [
  ['async', []],
  ['thread', ['-k', 'thread', '--threads', '2']],
];

for (const [kind, kindArgs] of KINDS) for (const name of EXAMPLES) {
  test(`examples/${name}.js (-k ${kind}): route templates as endpoint, error classes as error_type, exact counts`, async () => {
    const { url, metricsUrl } = await startServer([path.join(ROOT, 'examples', `${name}.js`), '--workers', '2', ...kindArgs]);
    const replies = await Promise.all(PLAN.map(([p]) => request(`${url}${p}`)));
    assert.deepEqual(
      replies.map((r, i) => [PLAN[i]![0], r.status]),
      PLAN,
    );
    const user = replies[0]!;
    assert.match(String(user.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(user.body), { id: 1, name: 'user 1' });

    const s = await scrapeUntil(metricsUrl, PLAN.length);
    const failed = 'gunicorn_worker_failed_requests_total';
    const errors = 'gunicorn_worker_error_handling_total';
    assert.equal(sum(s, 'gunicorn_worker_requests_total'), PLAN.length);
    assert.equal(sum(s, failed, { endpoint: '/orders/:orderId', method: 'GET' }), 3);
    assert.equal(sum(s, failed, { endpoint: '/health/:component', method: 'GET' }), 2);
    assert.equal(sum(s, failed), 5);
    assert.equal(sum(s, errors, { endpoint: '/orders/:orderId', error_type: 'UpstreamTimeoutError' }), 3);
    assert.equal(sum(s, errors, { endpoint: '/health/:component', error_type: 'http_503' }), 2);
    assert.equal(sum(s, errors), 5);
    // Only the two templates: no concrete id, no normalised path, no series per request.
    const endpoints = (series: string[]) => [...new Set(series.map((k) => /endpoint="([^"]*)"/.exec(k)![1]))].sort();
    assert.deepEqual(endpoints(seriesOf(s, failed)), ['/health/:component', '/orders/:orderId']);
    assert.deepEqual(endpoints(seriesOf(s, errors)), ['/health/:component', '/orders/:orderId']);
    assert.doesNotMatch(s.text, /endpoint="\/(orders|health)\/(\d+|db)"/);
  });
}

test('the frameworks are dev dependencies only', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  assert.deepEqual(Object.keys(pkg.dependencies).sort(), ['prom-client', 'redis', 'yaml']);
  for (const dep of ['express', 'fastify', 'koa', '@koa/router', 'hono']) assert.ok(pkg.devDependencies[dep], dep);
});
