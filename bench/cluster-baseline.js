// Baseline for bench/exporter.ts: the standard Node setup promfork replaces. A node:cluster primary forks
// worker processes that share one listening port, each instrumented with prom-client the usual way
// (express-prom-bundle-like: a Counter `http_requests_total{method,route,status}` and a Histogram
// `http_request_duration_seconds{method,route,status}` observed on every response), and the primary serves
// /metrics on its own port from prom-client's AggregatorRegistry.clusterMetrics(), which asks every worker
// over cluster IPC and waits for all of them (a fixed 5 s timeout in prom-client 15).
//
//   node bench/cluster-baseline.js [--workers 2] [--host 127.0.0.1] [--port 0] [--metrics-port 0] [--app FILE]
//
// Logs the same lines as promfork: `Listening at: URL (PID)` and `Serving metrics on URL/metrics`.
// Routes: those of examples/plain.js, plus /block?ms=N (busy-loops N ms on the event loop, like
// bench/apps/many-series.js). Workers that die are not replaced (this is a benchmark).
// SIGTERM / SIGINT: stop the metrics server and the workers, then exit.

import cluster from 'node:cluster';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import client from 'prom-client';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'metrics-port': { type: 'string', default: '0' },
    // The app the workers serve (default examples/plain.js); bench/apps/many-series.js gives each worker
    // BENCH_SERIES more series in the global registry, as promfork's scrape benchmark does.
    app: { type: 'string', default: new URL('../examples/plain.js', import.meta.url).pathname },
  },
});
const { default: app } = cluster.isPrimary ? { default: null } : await import(path.resolve(values.app));
const host = values.host;
const log = (msg) => process.stderr.write(`[${process.pid}] ${msg}\n`);

// As in prom-client's cluster example, in every process: constructing it is also what makes a worker answer
// the primary's metric requests.
const aggregatorRegistry = new client.AggregatorRegistry();

if (cluster.isPrimary) {
  let stopping = false;
  let announced = false;

  cluster.on('listening', (_worker, address) => {
    if (announced) return;
    announced = true;
    log(`Listening at: http://${host}:${address.port} (${process.pid})`);
  });
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) log(`worker ${worker.process.pid} exited (${signal ?? `code ${code}`}), not replaced`);
    if (stopping && Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
  });
  for (let i = 0; i < Number(values.workers); i++) cluster.fork();

  const metricsServer = http.createServer((req, res) => {
    req.resume();
    if ((req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    aggregatorRegistry.clusterMetrics().then(
      (body) => {
        res.writeHead(200, { 'Content-Type': aggregatorRegistry.contentType });
        res.end(body);
      },
      (err) => {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`${err?.message ?? err}\n`);
      },
    );
  });
  metricsServer.listen({ host, port: Number(values['metrics-port']) }, () => {
    log(`Serving metrics on http://${host}:${metricsServer.address().port}/metrics`);
  });

  const stop = () => {
    if (stopping) return;
    stopping = true;
    metricsServer.close();
    metricsServer.closeAllConnections();
    const workers = Object.values(cluster.workers ?? {});
    if (workers.length === 0) process.exit(0);
    for (const w of workers) w?.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 5000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  const labelNames = ['method', 'route', 'status'];
  const requests = new client.Counter({ name: 'http_requests_total', help: 'Requests handled', labelNames });
  const duration = new client.Histogram({
    name: 'http_request_duration_seconds',
    help: 'Request duration in seconds',
    labelNames, // buckets: prom-client's defaults (0.005 ... 10 s, 11 buckets)
  });
  // express-prom-bundle normalises paths so that ids do not make new series; the same idea, minimal.
  const routeOf = (url) => url.split('?', 1)[0].replace(/\/\d+(?=\/|$)/g, '/#val');

  const server = http.createServer((req, res) => {
    const end = duration.startTimer();
    res.once('finish', () => {
      const labels = { method: req.method, route: routeOf(req.url ?? '/'), status: String(res.statusCode) };
      requests.inc(labels);
      end(labels);
    });
    if (req.url?.startsWith('/block')) {
      const ms = Math.min(Number(new URL(req.url, 'http://localhost').searchParams.get('ms') ?? 5000) || 0, 60_000);
      const start = Date.now();
      let spins = 0;
      while (Date.now() - start < ms) spins++;
      res.setHeader('content-type', 'application/json');
      res.end(`${JSON.stringify({ pid: process.pid, start, end: Date.now(), spins })}\n`);
      return;
    }
    try {
      app(req, res);
    } catch {
      res.statusCode = 500;
      res.end('internal error\n');
    }
  });
  server.listen({ host, port: Number(values.port) });
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
