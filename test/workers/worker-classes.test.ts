// Worker class names a migrated config holds (Gunicorn's and the Python Gunicorn Prometheus Exporter's):
// each one resolves to its promfork counterpart, and the server says which in one info line.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it, test } from 'node:test';
import { builtinFor, resolveWorkerClass, usingWorkerLine } from '../../src/workers/worker-classes.js';
import { FIXTURES, request, startServer } from '../helpers/server.js';

// [name, class with metrics, class with --no-metrics, what the info line calls it (null: a promfork name)]
const NAMES: [string, string, string, string | null][] = [
  ['sync', 'PrometheusWorker', 'SyncWorker', null],
  ['async', 'PrometheusAsyncWorker', 'AsyncWorker', null],
  ['thread', 'PrometheusThreadWorker', 'ThreadWorker', null],
  ['PrometheusWorker', 'PrometheusWorker', 'SyncWorker', null],
  ['PrometheusAsyncWorker', 'PrometheusAsyncWorker', 'AsyncWorker', null],
  ['PrometheusThreadWorker', 'PrometheusThreadWorker', 'ThreadWorker', null],
  ['SyncWorker', 'SyncWorker', 'SyncWorker', null],
  ['gthread', 'PrometheusThreadWorker', 'ThreadWorker', "Gunicorn's gthread worker"],
  ['eventlet', 'PrometheusAsyncWorker', 'AsyncWorker', "Gunicorn's eventlet worker"],
  ['gevent', 'PrometheusAsyncWorker', 'AsyncWorker', "Gunicorn's gevent worker"],
  ['gevent_wsgi', 'PrometheusAsyncWorker', 'AsyncWorker', "Gunicorn's gevent_wsgi worker"],
  ['gevent_pywsgi', 'PrometheusAsyncWorker', 'AsyncWorker', "Gunicorn's gevent_pywsgi worker"],
  ['tornado', 'PrometheusAsyncWorker', 'AsyncWorker', "Gunicorn's tornado worker"],
  ['egg:gunicorn#sync', 'PrometheusWorker', 'SyncWorker', "Gunicorn's sync worker"],
  ['egg:gunicorn#gevent', 'PrometheusAsyncWorker', 'AsyncWorker', "Gunicorn's gevent worker"],
  ['gunicorn.workers.sync.SyncWorker', 'PrometheusWorker', 'SyncWorker', "Gunicorn's sync worker"],
  ['gunicorn.workers.gthread.ThreadWorker', 'PrometheusThreadWorker', 'ThreadWorker', "Gunicorn's gthread worker"],
  ['gunicorn.workers.geventlet.EventletWorker', 'PrometheusAsyncWorker', 'AsyncWorker', "Gunicorn's eventlet worker"],
  ['gunicorn.workers.ggevent.GeventWorker', 'PrometheusAsyncWorker', 'AsyncWorker', "Gunicorn's gevent worker"],
  ['gunicorn.workers.ggevent.GeventPyWSGIWorker', 'PrometheusAsyncWorker', 'AsyncWorker', "Gunicorn's gevent pywsgi worker"],
  ['gunicorn.workers.gtornado.TornadoWorker', 'PrometheusAsyncWorker', 'AsyncWorker', "Gunicorn's tornado worker"],
  ['PrometheusEventletWorker', 'PrometheusAsyncWorker', 'AsyncWorker', "the Python exporter's eventlet worker"],
  ['PrometheusGeventWorker', 'PrometheusAsyncWorker', 'AsyncWorker', "the Python exporter's gevent worker"],
  ['PrometheusTornadoWorker', 'PrometheusAsyncWorker', 'AsyncWorker', "the Python exporter's tornado worker"],
];
for (const [cls, kind] of [['PrometheusWorker', 'PrometheusWorker'], ['PrometheusThreadWorker', 'PrometheusThreadWorker'],
  ['PrometheusEventletWorker', 'PrometheusAsyncWorker'], ['PrometheusGeventWorker', 'PrometheusAsyncWorker'],
  ['PrometheusTornadoWorker', 'PrometheusAsyncWorker']] as const) {
  const plain = { PrometheusWorker: 'SyncWorker', PrometheusThreadWorker: 'ThreadWorker', PrometheusAsyncWorker: 'AsyncWorker' }[kind];
  const what = cls === 'PrometheusWorker' || cls === 'PrometheusThreadWorker'
    ? `the Python exporter's ${cls}`
    : `the Python exporter's ${cls.replace(/^Prometheus|Worker$/g, '').toLowerCase()} worker`;
  NAMES.push([`gunicorn_prometheus_exporter.${cls}`, kind, plain, what], [`gunicorn_prometheus_exporter.plugin.${cls}`, kind, plain, what]);
}

describe('worker class names', () => {
  for (const [name, withMetrics, plain, what] of NAMES) {
    it(`${name} -> ${withMetrics} (--no-metrics: ${plain})`, async () => {
      const resolved = await resolveWorkerClass(name, process.cwd(), true);
      assert.equal(resolved.id, withMetrics);
      assert.equal(builtinFor(name, false)?.id, plain);
      const how = withMetrics === 'PrometheusAsyncWorker'
        ? "Node's event loop, up to --worker-connections connections per worker"
        : withMetrics === 'PrometheusThreadWorker' ? 'the app on --threads worker_threads per worker' : 'one request at a time per worker';
      assert.equal(
        usingWorkerLine(resolved),
        what === null ? `Using worker: ${withMetrics}` : `Using worker: ${withMetrics} (-k ${name}: ${what}, served by ${withMetrics}: ${how})`,
      );
    });
  }

  it('names that are none of these are still refused', async () => {
    for (const name of ['gunicorn_prometheus_exporter.PrometheusMixin', 'gevent2', 'gunicorn.workers.nosuch.Worker']) {
      assert.equal(builtinFor(name, true), null, name);
      await assert.rejects(resolveWorkerClass(name, process.cwd(), true), { code: 'PROMFORK_ERR_WORKER_CLASS' });
    }
  });
});

// One server per kind, each started with a name users' Python configs hold; the info line appears once and
// the behaviour is the counterpart's: sync closes each connection, async keeps it alive, thread runs the app
// on a worker thread.
const THREAD_APP = path.join(FIXTURES, 'apps', 'thread-app.js') + ':app';
for (const [name, id, check] of [
  ['gunicorn_prometheus_exporter.PrometheusWorker', 'PrometheusWorker', (r: Awaited<ReturnType<typeof request>>) => assert.equal(r.headers.connection, 'close')],
  ['PrometheusGeventWorker', 'PrometheusAsyncWorker', (r: Awaited<ReturnType<typeof request>>) => assert.equal(r.headers.connection, 'keep-alive')],
  ['gunicorn_prometheus_exporter.plugin.PrometheusThreadWorker', 'PrometheusThreadWorker', (r: Awaited<ReturnType<typeof request>>) => assert.ok(JSON.parse(r.body).threadId > 0, r.body)],
] as const) {
  test(`-k ${name} is served by ${id}, said in one info line`, async () => {
    const { server, url } = await startServer([THREAD_APP, '-k', name]);
    const r = await request(`${url}/who`, { headers: { connection: 'keep-alive' } });
    assert.equal(r.status, 200);
    check(r);
    const lines = server.output.split('\n').filter((l) => l.includes('Using worker: '));
    assert.equal(lines.length, 1, server.output);
    assert.match(lines[0]!, new RegExp(`\\[INFO\\] Using worker: ${id} \\(-k ${name.replace(/\./g, '\\.')}: `));
  });
}
