// Bench app for bench/exporter.ts: a custom prom-client metric with many series, and a route that blocks the
// event loop.
//
//   promfork bench/apps/many-series.js -w N
//
// At load it registers, with the app's global prom-client registry, a Counter
// `bench_app_requests_total{route, code}` pre-initialised to BENCH_SERIES (default 1,000) label combinations,
// so that every worker holds about that many series from its first snapshot on.
//
// Routes:
//   /              "hello from worker PID" (as examples/plain.js), and +1 on one of the series (in turn)
//   /block?ms=N    busy-loops N ms (default 5,000) on the event loop, then answers
//                  {"pid":…,"start":…,"end":…} (unix ms): nothing else runs in this worker meanwhile
//   anything else  404

import client from 'prom-client';

const SERIES = Math.max(1, Number(process.env.BENCH_SERIES ?? 1000) || 1000);

const counter = new client.Counter({
  name: 'bench_app_requests_total',
  help: 'Requests of the many-series bench app, spread over many label sets',
  labelNames: ['route', 'code'],
});
const children = [];
for (let i = 0; i < SERIES; i++) {
  counter.inc({ route: `/r${i}`, code: '200' }, 0);
  children.push(counter.labels({ route: `/r${i}`, code: '200' }));
}
let next = 0;

function block(ms) {
  const start = Date.now();
  let spins = 0;
  while (Date.now() - start < ms) spins++;
  return { pid: process.pid, start, end: Date.now(), spins };
}

export default function app(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/') {
    children[next].inc();
    next = (next + 1) % SERIES;
    res.setHeader('content-type', 'text/plain');
    res.end(`hello from worker ${process.pid}\n`);
  } else if (url.pathname === '/block') {
    const ms = Math.min(Number(url.searchParams.get('ms') ?? 5000) || 0, 60_000);
    const body = JSON.stringify(block(ms));
    res.setHeader('content-type', 'application/json');
    res.end(`${body}\n`);
  } else {
    res.statusCode = 404;
    res.end('not found\n');
  }
}
