// Bench app for bench/workers-cpu-io.ts: one CPU-bound and one I/O-bound route.
//
//   promfork bench/apps/cpu-io.js -k thread --threads 2
//
// Routes:
//   /              "hello from worker PID" (the benchmarks' readiness probe)
//   /cpu?n=N       a fixed amount of work on the CPU, N rounds of 1,000 multiply-add steps (default
//                  BENCH_CPU_ROUNDS or 2,000: about 3 ms of one core of a shared cloud vCPU), then a short JSON answer.
//                  Work, not wall time: under contention a request takes longer instead of doing less.
//   /io?ms=N       waits N ms (default 20) without using the CPU, as a handler waiting on a database does
//   anything else  404

const DEFAULT_ROUNDS = Number(process.env.BENCH_CPU_ROUNDS ?? 2000) || 2000;

function work(rounds) {
  let x = 1;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < 1000; i++) x = (Math.imul(x, 1103515245) + 12345) | 0;
  }
  return x;
}

export default function app(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/') {
    res.setHeader('content-type', 'text/plain');
    res.end(`hello from worker ${process.pid}\n`);
  } else if (url.pathname === '/cpu') {
    const x = work(Number(url.searchParams.get('n') ?? DEFAULT_ROUNDS));
    res.setHeader('content-type', 'application/json');
    res.end(`{"x":${x}}`);
  } else if (url.pathname === '/io') {
    const ms = Math.min(Number(url.searchParams.get('ms') ?? 20), 10_000);
    setTimeout(() => {
      res.setHeader('content-type', 'application/json');
      res.end(`{"waited":${ms}}`);
    }, ms);
  } else {
    res.statusCode = 404;
    res.end('not found\n');
  }
}
