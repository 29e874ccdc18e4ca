// Framework adapters on the request path: what promforkExpressErrors(), promforkFastify, promforkKoa() and
// promforkHono() cost per request. A benchmark, not a test: it prints figures, and exits 1 if a request got
// an unexpected answer, a worker was lost, or /metrics does not show what the adapter should have recorded.
//
//   npm run build && node --import tsx bench/adapters.ts [--rounds N] [--duration N] [--parts load,micro] [--help]
//
// Part "load": for each framework, the same small app (bench/apps/adapter-<fw>.js) with and without its
//   adapter (BENCH_ADAPTER=on|off, read once at load: the two variants differ by the adapter line only),
//   each served by promfork -k async -w 1 with the exporter on (a private --multiproc-dir). Both servers of a
//   framework run side by side; each gets a warm-up on both routes, then autocannon (keep-alive, in this
//   process) loads the success route GET /users/42 (200, the common case) and the failing route
//   GET /orders/42 (the handler throws, 500: where the adapters do their work), with and without back to
//   back, the order alternating from round to round (and the framework order rotating), so that a noisy
//   neighbour on the shared machine hits both alike. After each framework's runs /metrics of both servers is
//   scraped: with the adapter the 500s must carry error_type="UpstreamTimeoutError" and
//   endpoint="/orders/:orderId", without it error_type="http_500", and the counts must match the client's.
//   Medians are over rounds; ratios are with / without.
// Part "micro": the adapters timed in this process with process.hrtime.bigint (wall) and process.cpuUsage
//   (CPU), over batches of many calls, each batch paired with a batch of the same loop without the adapter
//   (alternating), against the frameworks' own objects (bench/apps/adapter-objects.js: Fastify's request
//   and reply, Koa's ctx, Hono's Context, Express's req, each built by the framework for a real request) and,
//   where the framework pays something to run one more hook or middleware, its own runner (Fastify's
//   onRequest hook runner, Koa's composer) or the whole Hono app (app.fetch, with and without the adapter).
//   These give the per-request cost in ns even when the machine's noise hides it in requests/s.
//
// Every server is stopped by pid (SIGTERM, then SIGKILL to its process group; also on errors and on exit:
// see bench/lib.ts). Servers log at --log-level info (at debug, workers log every request).

import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import {
  CLI,
  ROOT,
  Server,
  cpuSeconds,
  distMtime,
  failureLog,
  fmt,
  freshDirs,
  machineCpuSeconds,
  machineLine,
  median,
  ownCpuSeconds,
  parseOrExit,
  percentile,
  pidAlive,
  positiveInt as positiveIntOr,
  requireBuild,
  table,
  type ServerSpec,
  reportEnd,
  runBench,
} from './lib.js';
import { sampleValues, scrape, sum } from './scrape.js';

const FRAMEWORKS = ['express', 'fastify', 'koa', 'hono'] as const;
type Framework = (typeof FRAMEWORKS)[number];
const ADAPTER: Record<Framework, string> = {
  express: 'promforkExpressErrors()',
  fastify: 'promforkFastify',
  koa: 'promforkKoa()',
  hono: 'promforkHono()',
};
type Variant = 'with' | 'without';
const VARIANTS: Variant[] = ['with', 'without'];
const ROUTES = [
  { key: 'success', path: '/users/42', label: 'GET /users/:id (200)' },
  { key: 'failure', path: '/orders/42', label: 'GET /orders/:orderId (500)' },
] as const;
type RouteKey = (typeof ROUTES)[number]['key'];

// ---- options ----

const USAGE = `usage: node --import tsx bench/adapters.ts [options]

  --parts LIST        of load (requests/s with and without each adapter, promfork -w 1) and micro
                      (ns per adapter call, in process) (default load,micro)
  --frameworks LIST   of ${FRAMEWORKS.join(', ')} (default all)
  --rounds N          load: rounds; each measures every framework x route x variant once (default 3)
  --duration N        load: measured seconds per run (default 3)
  --warmup N          load: warm-up seconds per server and route, once per round, not counted (default 1)
  --connections N     load: concurrent keep-alive connections (default 10)
  --batches N         micro: pairs of batches (with / without) per measurement (default 21)
  --batch-ms N        micro: target wall time of one batch, in ms (default 20)
  -h, --help          this text

Needs a build: npm run build (the servers run dist/cli.js; the micro part imports dist/adapters/*.js).
`;

interface Options {
  parts: Set<'load' | 'micro'>;
  frameworks: Framework[];
  rounds: number;
  duration: number;
  warmup: number;
  connections: number;
  batches: number;
  batchMs: number;
}

const positiveInt = (name: string, raw: string, min: number) => positiveIntOr(name, raw, min, USAGE);

function listOf<T extends string>(name: string, raw: string, allowed: readonly T[]): T[] {
  const list = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const bad = list.filter((s) => !(allowed as readonly string[]).includes(s));
  if (list.length === 0 || bad.length > 0) {
    process.stderr.write(`bench: --${name} takes a list of ${allowed.join(', ')}, got ${JSON.stringify(raw)}\n\n${USAGE}`);
    process.exit(2);
  }
  return allowed.filter((a) => list.includes(a));
}

function parseOptions(argv: string[]): Options {
  const v = parseOrExit(USAGE, () =>
    parseArgs({
      args: argv,
      options: {
        parts: { type: 'string', default: 'load,micro' },
        frameworks: { type: 'string', default: FRAMEWORKS.join(',') },
        rounds: { type: 'string', default: '3' },
        duration: { type: 'string', default: '3' },
        warmup: { type: 'string', default: '1' },
        connections: { type: 'string', default: '10' },
        batches: { type: 'string', default: '21' },
        'batch-ms': { type: 'string', default: '20' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values,
  );
  return {
    parts: new Set(listOf('parts', v.parts, ['load', 'micro'] as const)),
    frameworks: listOf('frameworks', v.frameworks, FRAMEWORKS),
    rounds: positiveInt('rounds', v.rounds, 1),
    duration: positiveInt('duration', v.duration, 1),
    warmup: positiveInt('warmup', v.warmup, 0),
    connections: positiveInt('connections', v.connections, 1),
    batches: positiveInt('batches', v.batches, 3),
    batchMs: positiveInt('batch-ms', v['batch-ms'], 1),
  };
}

const { failures, fail } = failureLog();
const out = (s: string) => process.stdout.write(s);
const ns = (n: number) => fmt(n, n < 100 ? 1 : 0);

// =============================================================================================================
// Part "load": requests/s with and without the adapter

const freshMultiprocDir = freshDirs('promfork-bench-adapters-');

function serverSpec(fw: Framework, variant: Variant): ServerSpec {
  return {
    label: `${fw} ${variant} ${ADAPTER[fw]}`,
    argv: [
      CLI, path.join(ROOT, 'bench', 'apps', `adapter-${fw}.js`),
      '-w', '1', '-k', 'async', '-b', '127.0.0.1:0', '--log-level', 'info',
      '--metrics-port', '0', '--metrics-bind', '127.0.0.1', '--multiproc-dir', freshMultiprocDir(),
    ],
    workers: 1,
    metrics: true,
    env: { BENCH_ADAPTER: variant === 'with' ? 'on' : 'off' },
  };
}

function cannon(url: string, seconds: number, connections: number): Promise<autocannon.Result> {
  return autocannon({ url, connections, duration: seconds, pipelining: 1 });
}

interface LoadSample {
  fw: Framework;
  route: RouteKey;
  variant: Variant;
  round: number;
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  /** Worker CPU per answered request, µs (from /proc). */
  cpuUsPerReq: number;
  cpuWorker: number;
  cpuPrimary: number;
  cpuLoadgen: number;
  cpuMachine: number;
  /** Answers that were not the route's status, connection errors and timeouts. */
  bad: number;
  lost: number;
}

/** What a run's answers must be: all 2xx on the success route, all 5xx on the failing one. */
function unexpected(route: RouteKey, r: autocannon.Result): number {
  const wrong = route === 'success' ? r.non2xx : r.requests.total - r['5xx'];
  return wrong + r.errors + r.timeouts;
}

async function measure(server: Server, fw: Framework, route: (typeof ROUTES)[number], variant: Variant, round: number, opts: Options): Promise<LoadSample> {
  const [workerPid] = [...server.servingPids];
  const snap = () => ({ worker: cpuSeconds(workerPid!), primary: cpuSeconds(server.pid), own: ownCpuSeconds(), machine: machineCpuSeconds() });
  const c0 = snap();
  const t0 = performance.now();
  const r = await cannon(`${server.url}${route.path}`, opts.duration, opts.connections);
  const wall = (performance.now() - t0) / 1000;
  const c1 = snap();
  if (!server.alive) throw new Error(`${server.spec.label}: the server exited during the measurement`);
  const pct = (s: number) => (100 * s) / wall;
  return {
    fw,
    route: route.key,
    variant,
    round,
    rps: r.requests.total / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    requests: r.requests.total,
    cpuUsPerReq: ((c1.worker - c0.worker) * 1e6) / Math.max(1, r.requests.total),
    cpuWorker: pct(c1.worker - c0.worker),
    cpuPrimary: pct(c1.primary - c0.primary),
    cpuLoadgen: pct(c1.own - c0.own),
    cpuMachine: pct(c1.machine - c0.machine),
    bad: unexpected(route.key, r),
    lost: pidAlive(workerPid!) ? 0 : 1,
  };
}

/**
 * /metrics after the runs: every failed request the client saw is counted (plus at most the ones in flight
 * when a load stopped), and all of them carry the labels the variant must give them.
 */
async function checkLabels(server: Server, fw: Framework, variant: Variant, client5xx: number, opts: Options): Promise<string> {
  const m = await scrape(server.metricsUrl, false, false);
  if (m.error) {
    fail(`${server.spec.label}: scrape failed: ${m.error}`);
    return 'scrape failed';
  }
  const failed = sum(sampleValues(m.body, 'gunicorn_worker_failed_requests_total'));
  const errorType = variant === 'with' ? 'UpstreamTimeoutError' : 'http_500';
  const typed = sum(sampleValues(m.body, 'gunicorn_worker_error_handling_total', `error_type="${errorType}"`));
  const templated = sum(sampleValues(m.body, 'gunicorn_worker_failed_requests_total', 'endpoint="/orders/:orderId"'));
  const problems: string[] = [];
  if (failed < client5xx || failed > client5xx + 2 * opts.connections) problems.push(`${failed} failed requests counted, the client saw ${client5xx} 500s`);
  if (typed !== failed) problems.push(`${typed} of ${failed} with error_type="${errorType}"`);
  if (variant === 'with' && templated !== failed) problems.push(`${templated} of ${failed} with endpoint="/orders/:orderId"`);
  if (problems.length) fail(`${fw}, ${variant} ${ADAPTER[fw]}: ${problems.join('; ')}`);
  const endpoints = [...m.body.matchAll(/^gunicorn_worker_failed_requests_total\{[^}]*endpoint="([^"]*)"/gm)].map((x) => x[1]);
  return `${fmt(failed)} failed, error_type=${errorType}, endpoint=${[...new Set(endpoints)].join(',')}`;
}

async function frameworkRound(fw: Framework, round: number, opts: Options): Promise<LoadSample[]> {
  const started = await Promise.allSettled(VARIANTS.map((v) => Server.start(serverSpec(fw, v))));
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    const failedStart = started.find((s) => s.status === 'rejected');
    if (failedStart) throw failedStart.reason;
    const byVariant = { with: servers[0]!, without: servers[1]! };
    const client5xx = { with: 0, without: 0 };
    for (const v of VARIANTS) {
      for (const route of ROUTES) {
        if (opts.warmup === 0) continue;
        const w = await cannon(`${byVariant[v].url}${route.path}`, opts.warmup, opts.connections);
        if (unexpected(route.key, w) > 0) fail(`${fw}, ${v} ${ADAPTER[fw]}, warm-up of ${route.path}: ${unexpected(route.key, w)} unexpected answers or errors`);
        client5xx[v] += w['5xx'];
      }
    }
    const samples: LoadSample[] = [];
    for (const [i, route] of ROUTES.entries()) {
      const order: Variant[] = (round + i) % 2 === 1 ? ['with', 'without'] : ['without', 'with'];
      for (const v of order) {
        const s = await measure(byVariant[v], fw, route, v, round, opts);
        samples.push(s);
        if (route.key === 'failure') client5xx[v] += s.requests;
        out(
          `round ${round}/${opts.rounds}  ${fw.padEnd(7)} ${route.path.padEnd(10)} ${`${v} adapter`.padEnd(15)} ${fmt(s.rps).padStart(7)} req/s  ` +
            `p50 ${s.p50} ms p99 ${s.p99} ms  worker ${fmt(s.cpuUsPerReq, 1)} µs/req  ` +
            `cpu% worker ${fmt(s.cpuWorker)} primary ${fmt(s.cpuPrimary)} loadgen ${fmt(s.cpuLoadgen)} machine ${fmt(s.cpuMachine)}` +
            `${s.bad ? `  UNEXPECTED ${s.bad}` : ''}${s.lost ? '  WORKER LOST' : ''}\n`,
        );
        if (s.bad) fail(`${fw}, ${v} ${ADAPTER[fw]}, ${route.path}, round ${round}: ${s.bad} unexpected answers, errors or timeouts`);
        if (s.lost) fail(`${fw}, ${v} ${ADAPTER[fw]}, ${route.path}, round ${round}: the worker was lost`);
      }
    }
    for (const v of VARIANTS) {
      const labels = await checkLabels(byVariant[v], fw, v, client5xx[v], opts);
      if (round === 1) out(`          ${fw} ${v} adapter, /metrics: ${labels}\n`);
    }
    return samples;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

/** Worker CPU µs per request without the adapter (median over rounds), per framework and route. */
type CpuPerRequest = Map<string, number>;

async function partLoad(opts: Options): Promise<{ cpuWithout: CpuPerRequest; ratio: Map<string, number> }> {
  const cores = os.cpus().length;
  out(
    `\n## Load: requests/s with and without each adapter (promfork -k async -w 1, exporter on)\n\n` +
      `${opts.rounds} rounds x ${opts.frameworks.length} frameworks x 2 routes x 2 variants x ${opts.duration} s measured ` +
      `(+ ${opts.warmup} s warm-up per server and route), ${opts.connections} keep-alive connections, ` +
      `autocannon in this process (sharing the ${cores} cores)\n\n`,
  );
  const samples: LoadSample[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    const fws = opts.frameworks.map((_, i) => opts.frameworks[(i + round - 1) % opts.frameworks.length]!);
    for (const fw of fws) {
      try {
        samples.push(...(await frameworkRound(fw, round, opts)));
      } catch (err) {
        fail(`${fw}, round ${round}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
  const cpuWithout: CpuPerRequest = new Map();
  const ratio = new Map<string, number>();
  const rows: string[][] = [];
  for (const fw of opts.frameworks) {
    for (const route of ROUTES) {
      const of = (v: Variant) => samples.filter((s) => s.fw === fw && s.route === route.key && s.variant === v);
      const w = of('with');
      const wo = of('without');
      if (w.length === 0 || wo.length === 0) continue;
      // Per-round pairs: the two runs of one round, back to back.
      const pairs = w.flatMap((a) => {
        const b = wo.find((x) => x.round === a.round);
        return b ? [{ rps: a.rps / b.rps, cpu: a.cpuUsPerReq - b.cpuUsPerReq }] : [];
      });
      const rpsRatios = pairs.map((p) => p.rps);
      const key = `${fw} ${route.key}`;
      const medW = median(w.map((s) => s.rps));
      const medWo = median(wo.map((s) => s.rps));
      cpuWithout.set(key, median(wo.map((s) => s.cpuUsPerReq)));
      ratio.set(key, medW / medWo);
      rows.push([
        `${fw}, ${route.label}`,
        fmt(medW),
        fmt(medWo),
        `${fmt(medW / medWo, 3)}`,
        `${fmt(median(rpsRatios), 3)}`,
        `${fmt(Math.min(...rpsRatios), 2)}–${fmt(Math.max(...rpsRatios), 2)}`,
        fmt(median(w.map((s) => s.cpuUsPerReq)), 1),
        fmt(median(wo.map((s) => s.cpuUsPerReq)), 1),
        fmt(median(pairs.map((p) => p.cpu)), 2),
        `${fmt(median(w.map((s) => s.p99)))} / ${fmt(median(wo.map((s) => s.p99)))}`,
        fmt(median([...w, ...wo].map((s) => s.cpuMachine))),
        String(sum([...w, ...wo].map((s) => s.bad + s.lost))),
      ]);
    }
  }
  out(
    `\nMedians over ${opts.rounds} rounds (with = with the adapter; ratios with / without; CPU from /proc, 10 ms ticks)\n\n` +
      table(
        ['framework, route', 'req/s with', 'req/s without', 'ratio of medians', 'median of per-round ratios', 'per-round min–max', 'worker CPU µs/req with', 'without', 'added µs/req (median per-round diff)', 'p99 ms with / without', 'CPU machine %', 'unexpected'],
        rows,
      ) +
      `\n\nCPU machine = every process on the machine, in % of one core (${cores} cores = ${cores * 100}%).\n`,
  );
  return { cpuWithout, ratio };
}

// =============================================================================================================
// Part "micro": ns per adapter call, in process

type Done = (err?: unknown) => void;
type Hook = (...args: unknown[]) => void;
type Middleware = (ctx: unknown, next: () => Promise<unknown>) => Promise<unknown>;
interface AdapterModules {
  express: { promforkExpressErrors: () => (err: unknown, req: unknown, res: unknown, next: Done) => void };
  fastify: { promforkFastify: (app: { addHook(name: string, hook: Hook): unknown }, opts: unknown, done: Done) => void };
  koa: { promforkKoa: () => Middleware };
  hono: { promforkHono: () => Middleware };
}
type Carrier = { promforkRoute?: unknown; promforkError?: unknown };
interface ObjectsModule {
  fastifyObjects(): Promise<{
    request: { raw: Carrier };
    reply: unknown;
    onRequestHookRunner: (hooks: Hook[], request: unknown, reply: unknown, cb: (err: unknown, request: unknown, reply: unknown) => void) => void;
    onSendHookRunner: (hooks: Hook[], request: unknown, reply: unknown, payload: unknown, cb: () => void) => void;
  }>;
  koaObjects(): Promise<{ ctx: { req: Carrier }; compose: (mw: unknown[]) => (ctx: unknown) => Promise<unknown> }>;
  honoObjects(): Promise<{ success: { env: { incoming: Carrier } }; failure: { env: { incoming: Carrier }; error: unknown } }>;
  expressObjects(): Promise<{ req: Carrier; res: unknown; err: Error }>;
}
interface FetchApp {
  fetch(request: Request, env: unknown): Response | Promise<Response>;
}
interface WorkerMetricsLike {
  observe(req: unknown, status: number, durationNs: bigint, error: unknown): void;
}

type Op = () => unknown;

interface MicroRow {
  fw: Framework | 'promfork';
  route: RouteKey;
  what: string;
  /** The with/without difference of this row is the adapter's whole cost per request on that route. */
  perRequest: boolean;
  async: boolean;
  /** Batches this many times longer than --batch-ms (allocation-heavy rows: GC pauses average out). */
  batchScale?: number;
  with: Op;
  without: Op;
}

interface MicroResult {
  row: MicroRow;
  n: number;
  withWall: number;
  withCpu: number;
  withoutWall: number;
  withoutCpu: number;
  addedWall: number;
  addedCpu: number;
  addedWallP25: number;
  addedWallP75: number;
}

const importDist = async <T>(...parts: string[]) => (await import(pathToFileURL(path.join(ROOT, ...parts)).href)) as T;

function batchSync(op: Op, n: number): { wall: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) op();
  const t1 = process.hrtime.bigint();
  const c = process.cpuUsage(c0);
  return { wall: Number(t1 - t0) / n, cpu: ((c.user + c.system) * 1000) / n };
}

async function batchAsync(op: Op, n: number): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await op();
  const t1 = process.hrtime.bigint();
  const c = process.cpuUsage(c0);
  return { wall: Number(t1 - t0) / n, cpu: ((c.user + c.system) * 1000) / n };
}

async function timeRow(row: MicroRow, opts: Options): Promise<MicroResult> {
  const batch = (op: Op, n: number) => (row.async ? batchAsync(op, n) : Promise.resolve(batchSync(op, n)));
  // Calibrate on the adapter's loop (also the JIT warm-up of both): a batch of about --batch-ms.
  let n = 256;
  for (;;) {
    const t = await batch(row.with, n);
    await batch(row.without, n);
    if (t.wall * n >= opts.batchMs * (row.batchScale ?? 1) * 1e6 || n >= 1 << 26) break;
    n *= 2;
  }
  const w: { wall: number; cpu: number }[] = [];
  const wo: { wall: number; cpu: number }[] = [];
  for (let b = 0; b < opts.batches; b++) {
    if (b % 2 === 0) {
      w.push(await batch(row.with, n));
      wo.push(await batch(row.without, n));
    } else {
      wo.push(await batch(row.without, n));
      w.push(await batch(row.with, n));
    }
  }
  const addedWall = w.map((x, i) => x.wall - wo[i]!.wall);
  return {
    row,
    n,
    withWall: median(w.map((x) => x.wall)),
    withCpu: median(w.map((x) => x.cpu)),
    withoutWall: median(wo.map((x) => x.wall)),
    withoutCpu: median(wo.map((x) => x.cpu)),
    addedWall: median(addedWall),
    addedCpu: median(w.map((x, i) => x.cpu - wo[i]!.cpu)),
    addedWallP25: percentile(addedWall, 25),
    addedWallP75: percentile(addedWall, 75),
  };
}

async function microRows(fws: Framework[]): Promise<MicroRow[]> {
  const objects = await importDist<ObjectsModule>('bench', 'apps', 'adapter-objects.js');
  const noop = () => {};
  const resolved = () => Promise.resolve();
  const reset = (req: Carrier) => {
    req.promforkRoute = undefined;
    req.promforkError = undefined;
  };
  const rows: MicroRow[] = [];

  if (fws.includes('express')) {
    const { promforkExpressErrors } = await importDist<AdapterModules['express']>('dist', 'adapters', 'express.js');
    const mw = promforkExpressErrors();
    const { req, res, err } = await objects.expressObjects();
    rows.push({
      fw: 'express', route: 'failure', perRequest: true, async: false,
      what: 'error middleware (err, req, res, next) on Express\'s req (req.route set) vs next(err); props reset each call',
      with: () => {
        reset(req);
        mw(err, req, res, noop);
      },
      without: () => {
        reset(req);
        noop();
      },
    });
  }

  if (fws.includes('fastify')) {
    const { promforkFastify } = await importDist<AdapterModules['fastify']>('dist', 'adapters', 'fastify.js');
    const hooks: Record<string, Hook> = {};
    promforkFastify({ addHook: (name, hook) => (hooks[name] = hook) }, {}, noop);
    const onRequest = hooks.onRequest!;
    const onError = hooks.onError!;
    const { request, reply, onRequestHookRunner, onSendHookRunner } = await objects.fastifyObjects();
    const hookList = [onRequest];
    const hookList2 = [onError];
    const cb = (_err: unknown, _request: unknown, _reply: unknown) => {};
    const err = new Error('order service timed out');
    rows.push(
      {
        fw: 'fastify', route: 'success', perRequest: false, async: false,
        what: 'onRequest hook alone on Fastify\'s request/reply (reads request.routeOptions.url) vs done()',
        with: () => onRequest(request, reply, noop),
        without: () => noop(),
      },
      {
        fw: 'fastify', route: 'success', perRequest: true, async: false,
        what: 'Fastify\'s onRequestHookRunner([hook]) vs the direct call Fastify makes when a route has no onRequest hook',
        with: () => onRequestHookRunner(hookList, request, reply, cb),
        without: () => cb(null, request, reply),
      },
      {
        fw: 'fastify', route: 'failure', perRequest: false, async: false,
        what: 'onError hook alone vs done(); props reset each call',
        with: () => {
          reset(request.raw);
          onError(request, reply, err, noop);
        },
        without: () => {
          reset(request.raw);
          noop();
        },
      },
      {
        fw: 'fastify', route: 'failure', perRequest: true, async: false,
        what: 'Fastify\'s runner of onError hooks (onSendHookRunner([hook], ..., () => handleError())) vs handleError() directly; props reset',
        with: () => {
          reset(request.raw);
          onSendHookRunner(hookList2, request, reply, err, () => noop());
        },
        without: () => {
          reset(request.raw);
          noop();
        },
      },
    );
  }

  if (fws.includes('koa')) {
    const { promforkKoa } = await importDist<AdapterModules['koa']>('dist', 'adapters', 'koa.js');
    const mw = promforkKoa();
    const { ctx, compose } = await objects.koaObjects();
    const terminal = () => {};
    const withChain = compose([mw, terminal]);
    const withoutChain = compose([terminal]);
    const err = new Error('order service timed out');
    const rejected = () => Promise.reject(err);
    rows.push(
      {
        fw: 'koa', route: 'success', perRequest: false, async: true,
        what: 'middleware alone on Koa\'s ctx (_matchedRoute set by @koa/router), next() resolved, vs await next()',
        with: () => mw(ctx, resolved),
        without: () => resolved(),
      },
      {
        fw: 'koa', route: 'success', perRequest: true, async: true,
        what: 'Koa\'s composer: compose([adapter, downstream])(ctx) vs compose([downstream])(ctx)',
        with: () => withChain(ctx),
        without: () => withoutChain(ctx),
      },
      {
        fw: 'koa', route: 'failure', perRequest: false, async: true,
        what: 'middleware alone, next() rejects (the adapter records and rethrows) vs next() rejecting; props reset',
        with: () => {
          reset(ctx.req);
          return mw(ctx, rejected).catch(noop);
        },
        without: () => {
          reset(ctx.req);
          return rejected().catch(noop);
        },
      },
    );
  }

  if (fws.includes('hono')) {
    const { promforkHono } = await importDist<AdapterModules['hono']>('dist', 'adapters', 'hono.js');
    const mw = promforkHono();
    const { success, failure } = await objects.honoObjects();
    const app = await importDist<{ build(withAdapter: boolean, middleware?: unknown): FetchApp }>('bench', 'apps', 'adapter-hono.js');
    const withApp = app.build(true);
    const withoutApp = app.build(false);
    const env = { incoming: new http.IncomingMessage(null as never), outgoing: null };
    const fetchOp = (a: FetchApp, url: string) => () => {
      reset(env.incoming as Carrier);
      return a.fetch(new Request(url), env);
    };
    // Any middleware takes Hono off its fast path (one matched handler is called directly, no compose).
    const noopMiddleware = async (_c: unknown, next: () => Promise<void>) => {
      await next();
    };
    const noopApp = app.build(true, noopMiddleware);
    // An app already off the fast path (it has a middleware of its own): what the adapter adds there.
    const noopThenAdapterApp = app.build(true, [noopMiddleware, promforkHono()]);
    rows.push(
      {
        fw: 'hono', route: 'success', perRequest: false, async: true,
        what: 'middleware alone on Hono\'s Context after a 200 (c.env.incoming set), next() resolved, vs await next()',
        with: () => mw(success, resolved),
        without: () => resolved(),
      },
      {
        fw: 'hono', route: 'success', perRequest: true, async: true, batchScale: 10,
        what: 'the whole bench app, app.fetch(GET /users/42) with vs without app.use(promforkHono())',
        with: fetchOp(withApp, 'http://bench/users/42'),
        without: fetchOp(withoutApp, 'http://bench/users/42'),
      },
      {
        fw: 'hono', route: 'success', perRequest: false, async: true, batchScale: 10,
        what: 'diagnostic: the same app.fetch with a no-op app.use(async (c, next) => { await next() }) instead of the adapter, vs without',
        with: fetchOp(noopApp, 'http://bench/users/42'),
        without: fetchOp(withoutApp, 'http://bench/users/42'),
      },
      {
        fw: 'hono', route: 'success', perRequest: false, async: true, batchScale: 10,
        what: 'diagnostic: an app with a middleware of its own: app.use(noop, promforkHono()) vs app.use(noop)',
        with: fetchOp(noopThenAdapterApp, 'http://bench/users/42'),
        without: fetchOp(noopApp, 'http://bench/users/42'),
      },
      {
        fw: 'hono', route: 'failure', perRequest: false, async: true,
        what: 'middleware alone on the Context of a thrown handler (c.error set, 500) vs await next(); props reset',
        with: () => {
          reset(failure.env.incoming);
          return mw(failure, resolved);
        },
        without: () => {
          reset(failure.env.incoming);
          return resolved();
        },
      },
      {
        fw: 'hono', route: 'failure', perRequest: true, async: true, batchScale: 10,
        what: 'the whole bench app, app.fetch(GET /orders/42) with vs without app.use(promforkHono())',
        with: fetchOp(withApp, 'http://bench/orders/42'),
        without: fetchOp(withoutApp, 'http://bench/orders/42'),
      },
      {
        fw: 'hono', route: 'failure', perRequest: false, async: true, batchScale: 10,
        what: 'diagnostic: the same app.fetch(GET /orders/42) with the no-op middleware instead of the adapter, vs without',
        with: fetchOp(noopApp, 'http://bench/orders/42'),
        without: fetchOp(withoutApp, 'http://bench/orders/42'),
      },
    );
  }

  // What the adapter changes in promfork's own accounting of a 500: the endpoint label and error_type come from
  // the request (template, error class) instead of the normalised path and http_500.
  const { WorkerMetrics } = await importDist<{ WorkerMetrics: new (o: { namespace: string; seat: number; endpointCap: number }) => WorkerMetricsLike }>(
    'dist', 'metrics', 'worker-metrics.js',
  );
  const metrics = new WorkerMetrics({ namespace: 'gunicorn', seat: 0, endpointCap: 100 });
  const adapted = { method: 'GET', url: '/orders/42', headers: {}, promforkRoute: '/orders/:orderId', promforkError: new Error('x') };
  const plain = { method: 'GET', url: '/orders/42', headers: {} };
  rows.push({
    fw: 'promfork', route: 'failure', perRequest: false, async: false,
    what: 'WorkerMetrics.observe of a 500: labels from the adapter (template, error class) vs from the path (/orders/:id, http_500)',
    with: () => metrics.observe(adapted, 500, 1_000_000n, null),
    without: () => metrics.observe(plain, 500, 1_000_000n, null),
  });
  return rows;
}

async function partMicro(opts: Options, load: { cpuWithout: CpuPerRequest; ratio: Map<string, number> } | null): Promise<void> {
  out(
    `\n## Micro: the adapters in process (${opts.batches} pairs of batches of ~${opts.batchMs} ms, with / without alternating)\n\n` +
      'ns per call: median over batches; wall = process.hrtime.bigint, CPU = process.cpuUsage (the whole process: it\n' +
      'includes V8\'s GC helper threads, so for allocation-heavy rows (app.fetch) the wall figure is the one to read);\n' +
      'added = median of the per-pair differences (with - without), p25–p75 of those differences in brackets.\n\n',
  );
  const rows = await microRows(opts.frameworks);
  const results: MicroResult[] = [];
  for (const row of rows) {
    const r = await timeRow(row, opts);
    results.push(r);
    out(
      `${`${row.fw} ${row.route}`.padEnd(17)} with ${ns(r.withWall).padStart(7)} ns  without ${ns(r.withoutWall).padStart(7)} ns  ` +
        `added ${ns(r.addedWall).padStart(6)} ns wall, ${ns(r.addedCpu).padStart(6)} ns CPU  (n=${r.n})  ${row.what}\n`,
    );
  }
  out(
    `\n${table(
      ['adapter, path', 'what is timed', 'with ns (wall / CPU)', 'without ns (wall / CPU)', 'added ns wall [p25–p75]', 'added ns CPU', 'calls per batch'],
      results.map((r) => [
        `${r.row.fw === 'promfork' ? 'promfork accounting' : ADAPTER[r.row.fw]}, ${r.row.route}`,
        r.row.what,
        `${ns(r.withWall)} / ${ns(r.withCpu)}`,
        `${ns(r.withoutWall)} / ${ns(r.withoutCpu)}`,
        `${ns(r.addedWall)} [${ns(r.addedWallP25)}–${ns(r.addedWallP75)}]`,
        ns(r.addedCpu),
        fmt(r.n),
      ]),
    )}\n`,
  );
  // Per request: the rows that are the adapter's whole cost on the success route, against what a request
  // costs the worker (the load part's CPU per request without the adapter).
  const per = opts.frameworks.map((fw) => {
    const r = results.find((x) => x.row.fw === fw && x.row.route === 'success' && x.row.perRequest);
    const added = r ? r.addedWall : 0; // Express: the error middleware is not on the success path at all
    const cpu = load?.cpuWithout.get(`${fw} success`);
    const predicted = cpu ? 1 / (1 + added / 1000 / cpu) : NaN;
    const measured = load?.ratio.get(`${fw} success`);
    return [
      `${fw}, ${ADAPTER[fw]}`,
      r ? ns(added) : '0 (not called on success)',
      cpu ? fmt(cpu, 1) : 'n/a',
      cpu ? `${fmt((100 * added) / 1000 / cpu, 2)}%` : 'n/a',
      Number.isFinite(predicted) ? fmt(predicted, 3) : 'n/a',
      measured !== undefined ? fmt(measured, 3) : 'n/a',
    ];
  });
  out(
    `\nSuccess route, per request\n\n${table(
      ['framework, adapter', 'added ns/request (micro, wall)', 'worker CPU µs/request without (load)', 'share', 'predicted req/s ratio if CPU-bound', 'measured ratio of medians (load)'],
      per,
    )}\n`,
  );
}

// =============================================================================================================

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  requireBuild();
  const cores = os.cpus().length;
  const loadSeconds = opts.parts.has('load') ? opts.rounds * opts.frameworks.length * (3 + 4 * (opts.warmup + opts.duration)) : 0;
  // ~11 rows of one batch length and 6 app.fetch rows of ten (batchScale), plus the imports.
  const microSeconds = opts.parts.has('micro') ? (75 * (opts.batches * 2 + 8) * opts.batchMs) / 1000 + 5 : 0;
  out(
    [
      '# promfork framework adapters on the request path',
      '',
      machineLine(),
      `load average at start: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} (1, 5, 15 min)`,
      `note: a shared ${cores}-core machine: the servers and the load generator share these ${cores} cores, and other jobs may run;`,
      '      compare with/without from the same run, and read the micro figures for effects below the noise.',
      `dist/ built ${distMtime()}; frameworks: ${opts.frameworks.join(', ')}; parts: ${[...opts.parts].join(', ')}; ` +
        `expected duration: about ${Math.ceil((loadSeconds + microSeconds) / 10) * 10} s`,
      '',
    ].join('\n'),
  );
  const started = performance.now();
  const builtAt = distMtime();
  let load: Awaited<ReturnType<typeof partLoad>> | null = null;
  if (opts.parts.has('load')) {
    try {
      load = await partLoad(opts);
    } catch (err) {
      fail(`load: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
  if (opts.parts.has('micro')) {
    try {
      await partMicro(opts, load);
    } catch (err) {
      fail(`micro: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
  out(`\nload average at end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; total time ${fmt((performance.now() - started) / 1000)} s\n`);
  reportEnd(failures, builtAt);
}

runBench(main);
