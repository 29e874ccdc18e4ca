// Exporter benchmark: what promfork's built-in Prometheus exporter costs and how its /metrics behaves, against
// the standard Node setup it replaces (node:cluster + prom-client's AggregatorRegistry, bench/cluster-baseline.js).
// A benchmark, not a test: it prints tables, and exits 1 if any request, scrape or check failed.
//
//   npm run build && node --import tsx bench/exporter.ts [--seconds N] [--rounds N] [--parts 1,2,3] [--help]
//
// Part 1, throughput overhead: requests/s of examples/plain.js (GET /, keep-alive, 10 connections, autocannon
//   in this process) with 2 async workers, exporter on vs --no-metrics, vs the cluster baseline. The three
//   configurations alternate within each round (the order rotates from round to round); each run gets a fresh
//   server (and a fresh --multiproc-dir), a warm-up, then the measured seconds. After each run /metrics is
//   scraped and the request counter checked against what the client saw (docs/design.md, L6).
// Part 2, scrape latency: GET /metrics, sequentially, at 2, 8 and 32 workers of bench/apps/many-series.js
//   (~1,000 series per worker in the app's prom-client registry): first idle, then while a load generator
//   (autocannon in a worker thread, so that it does not delay this thread's timing) loads the app; the same
//   against prom-client's AggregatorRegistry (bench/cluster-baseline.js --app many-series.js) in the same run, the
//   order alternating per worker count, and the p99 ratios against the exporter issue's targets.
//   (The other targets of that issue have their own scripts: bench/overhead.ts, the worker's CPU per request and
//   memory, pinned; bench/scrape-compare.ts, the same comparison under wrk; bench/sigkill-loss.ts.)
// Part 3, blocked worker: one of 2 workers busy-loops its event loop (GET /block), and /metrics is scraped 10
//   times while it is blocked, from promfork and from the cluster baseline.
//
// Every server is stopped by pid (SIGTERM, then SIGKILL to its process group; also on errors and on exit:
// see bench/lib.ts). Servers log at --log-level info (at debug, workers log every request).

import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  CLI,
  PLAIN_APP,
  ROOT,
  Server,
  backgroundLoad,
  cpuSeconds,
  distMtime,
  fmt,
  load,
  machineCpuSeconds,
  machineLine,
  median,
  ownCpuSeconds,
  percentile,
  pidAlive,
  positiveInt as positiveIntOr,
  requireBuild,
  sleep,
  table,
  withServer,
  type ServerSpec,
  parseOrExit,
  failureLog,
  freshDirs,
  multiprocDirOf,
  reportEnd,
  runBench,
} from './lib.js';
import { sampleValues, scrape, seriesCount, sum, type Scrape } from './scrape.js';

const CLUSTER = path.join(ROOT, 'bench', 'cluster-baseline.js');
const MANY_SERIES = path.join(ROOT, 'bench', 'apps', 'many-series.js');
const P1_WORKERS = 2;
const P3_WORKERS = 2;
const P3_SCRAPES = 10;
const WARMUP_SCRAPES = 10;
const QUIET_MS = 2000;

// ---- options ----

const USAGE = `usage: node --import tsx bench/exporter.ts [options]

  --parts LIST          parts to run, of 1 (throughput overhead), 2 (scrape latency), 3 (blocked worker)
                        (default 1,2,3)
  --seconds N           part 1: measured seconds per run (default 4)
  --rounds N            part 1: rounds; each runs the 3 configurations once (default 7)
  --warmup N            part 1: warm-up seconds before each measured run, not counted (default 1)
  --connections N       parts 1 and 2: concurrent client connections of the load (default 10)
  --workers LIST        part 2: worker counts (default 2,8,32)
  --scrapes N           part 2: scrapes per phase (idle, under load) and worker count (default 200)
  --series N            parts 2 and 3: series per worker in the app's registry (default 1000)
  --gzip                parts 2 and 3: scrape with \`Accept-Encoding: gzip\`, as Prometheus does (default: identity)
  --block-seconds N     part 3: how long the blocked worker busy-loops (default 5)
  --long-block-seconds N  part 3: also run both servers with a block this long, past prom-client's 5 s
                        timeout (default 8; 0: skip)
  -h, --help            this text

Needs a build: npm run build (the servers run dist/cli.js).
`;

interface Options {
  parts: Set<number>;
  seconds: number;
  rounds: number;
  warmup: number;
  connections: number;
  workers: number[];
  scrapes: number;
  series: number;
  gzip: boolean;
  blockSeconds: number;
  longBlockSeconds: number;
}

const positiveInt = (name: string, raw: string, min: number) => positiveIntOr(name, raw, min, USAGE);

function intList(name: string, raw: string, min: number): number[] {
  const list = raw.split(',').filter((s) => s.trim() !== '').map((s) => positiveInt(name, s.trim(), min));
  if (list.length === 0) positiveInt(name, raw, min); // exits with the usage text
  return list;
}

function parseOptions(argv: string[]): Options {
  const v = parseOrExit(USAGE, () =>
    parseArgs({
      args: argv,
      options: {
        parts: { type: 'string', default: '1,2,3' },
        seconds: { type: 'string', default: '4' },
        rounds: { type: 'string', default: '7' },
        warmup: { type: 'string', default: '1' },
        connections: { type: 'string', default: '10' },
        workers: { type: 'string', default: '2,8,32' },
        scrapes: { type: 'string', default: '200' },
        series: { type: 'string', default: '1000' },
        gzip: { type: 'boolean', default: false },
        'block-seconds': { type: 'string', default: '5' },
        'long-block-seconds': { type: 'string', default: '8' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values,
  );
  const parts = new Set(intList('parts', v.parts, 1));
  if ([...parts].some((p) => p > 3)) {
    process.stderr.write(`bench: --parts takes 1, 2 and/or 3, got ${JSON.stringify(v.parts)}\n\n${USAGE}`);
    process.exit(2);
  }
  const blockSeconds = positiveInt('block-seconds', v['block-seconds'], 2);
  const longBlockSeconds = positiveInt('long-block-seconds', v['long-block-seconds'], 0);
  return {
    parts,
    seconds: positiveInt('seconds', v.seconds, 1),
    rounds: positiveInt('rounds', v.rounds, 1),
    warmup: positiveInt('warmup', v.warmup, 0),
    connections: positiveInt('connections', v.connections, 1),
    workers: intList('workers', v.workers, 1),
    scrapes: positiveInt('scrapes', v.scrapes, 1),
    series: positiveInt('series', v.series, 1),
    gzip: v.gzip,
    blockSeconds,
    longBlockSeconds: longBlockSeconds > 0 && longBlockSeconds !== blockSeconds ? Math.max(2, longBlockSeconds) : 0,
  };
}

// ---- failures: reported as they happen, and the exit status at the end ----

const { failures, fail } = failureLog();

const out = (s: string) => process.stdout.write(s);

// ---- fresh store directories, removed at exit ----

const freshMultiprocDir = freshDirs('promfork-bench-exporter-');

// ---- server specs ----

function promforkSpec(label: string, app: string, workers: number, opts: { metrics: boolean; series?: number; bootTimeoutMs?: number }): ServerSpec {
  const argv = [CLI, app, '-w', String(workers), '-k', 'async', '-b', '127.0.0.1:0', '--log-level', 'info'];
  if (opts.metrics) argv.push('--metrics-port', '0', '--metrics-bind', '127.0.0.1', '--multiproc-dir', freshMultiprocDir());
  else argv.push('--no-metrics');
  return {
    label,
    argv,
    workers,
    metrics: opts.metrics,
    env: opts.series !== undefined ? { BENCH_SERIES: String(opts.series) } : {},
    ...(opts.bootTimeoutMs !== undefined ? { bootTimeoutMs: opts.bootTimeoutMs } : {}),
  };
}

function clusterSpec(label: string, workers: number, series?: number): ServerSpec {
  if (series === undefined) return { label, argv: [CLUSTER, '--workers', String(workers)], workers, metrics: true };
  return {
    label,
    argv: [CLUSTER, '--workers', String(workers), '--app', MANY_SERIES],
    workers,
    metrics: true,
    env: { BENCH_SERIES: String(series) },
    bootTimeoutMs: Math.max(20_000, workers * 3000),
  };
}

/** The directory given to a promfork spec with --multiproc-dir. */

/**
 * Wait until promfork's /metrics shows all `workers` seats running, each with a persisted snapshot, and the
 * app's `series` series: the scrape then merges every worker's full snapshot.
 */
async function waitExporterReady(server: Server, workers: number, series: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let last: string;
    const r = await scrape(server.metricsUrl, false, false);
    if (r.error === null) {
      const running = sampleValues(r.body, 'gunicorn_worker_state', 'state="running"').length;
      const snapshots = sampleValues(r.body, 'promfork_worker_snapshot_age_seconds').length;
      const app = sampleValues(r.body, 'bench_app_requests_total').length;
      if (running === workers && snapshots === workers && app === series) return;
      last = `${running} running seats, ${snapshots} snapshots, ${app} app series`;
    } else {
      last = r.error;
    }
    if (!server.alive) throw new Error(`${server.spec.label}: exited before its exporter was ready`);
    if (performance.now() > deadline) {
      throw new Error(`${server.spec.label}: exporter not ready after ${timeoutMs} ms (want ${workers} running seats with snapshots and ${series} app series; last: ${last}); last output:\n${server.tail}`);
    }
    await sleep(200);
  }
}

// =============================================================================================================
// Part 1: throughput overhead

interface P1Config {
  key: 'on' | 'off' | 'cluster';
  label: string;
  spec: () => ServerSpec;
  /** The request counter in /metrics, summed to check it against the client's count. */
  counter: string | null;
}

const P1_CONFIGS: P1Config[] = [
  {
    key: 'on',
    label: `promfork -k async -w ${P1_WORKERS}, metrics on`,
    spec: () => promforkSpec('promfork, metrics on', PLAIN_APP, P1_WORKERS, { metrics: true }),
    counter: 'gunicorn_worker_requests_total',
  },
  {
    key: 'off',
    label: `promfork -k async -w ${P1_WORKERS}, --no-metrics`,
    spec: () => promforkSpec('promfork, --no-metrics', PLAIN_APP, P1_WORKERS, { metrics: false }),
    counter: null,
  },
  {
    key: 'cluster',
    label: `node:cluster ${P1_WORKERS} workers + prom-client`,
    spec: () => clusterSpec('cluster baseline', P1_WORKERS),
    counter: 'http_requests_total',
  },
];

interface P1Sample {
  key: P1Config['key'];
  round: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  lost: number;
  cpuPrimary: number;
  cpuWorkers: number;
  cpuLoadgen: number;
  cpuMachine: number;
  /** Requests the client saw answered (probes, warm-up, measured) and what the server's counter says. */
  clientCount: number;
  serverCount: number | null;
}

async function p1Run(config: P1Config, round: number, opts: Options): Promise<P1Sample> {
  return withServer(config.spec(), async (server) => {
    const warm = opts.warmup > 0 ? await load(server.url, opts.warmup, opts.connections) : null;
    const workerPids = [...server.servingPids];
    const snap = () => ({ primary: cpuSeconds(server.pid), workers: workerPids.map(cpuSeconds), own: ownCpuSeconds(), machine: machineCpuSeconds() });
    const cpu0 = snap();
    const t0 = performance.now();
    const r = await load(server.url, opts.seconds, opts.connections);
    const wall = (performance.now() - t0) / 1000;
    const cpu1 = snap();
    const pct = (s: number) => (100 * s) / wall;
    if (!server.alive) throw new Error(`${config.label}: the server exited during the measurement`);
    let serverCount: number | null = null;
    if (config.counter) {
      const m = await scrape(server.metricsUrl, false, false);
      if (m.error) fail(`part 1, ${config.label}, round ${round}: scrape after the run failed: ${m.error}`);
      else serverCount = sum(sampleValues(m.body, config.counter));
    }
    return {
      key: config.key,
      round,
      rps: r.requests.total / r.duration,
      p50: r.latency.p50,
      p99: r.latency.p99,
      errors: r.errors + r.timeouts + (warm ? warm.errors + warm.timeouts : 0),
      non2xx: r.non2xx + r.mismatches + (warm ? warm.non2xx + warm.mismatches : 0),
      lost: workerPids.filter((pid) => !pidAlive(pid)).length,
      cpuPrimary: pct(cpu1.primary - cpu0.primary),
      cpuWorkers: pct(cpu1.workers.reduce((a, v, i) => a + v - cpu0.workers[i]!, 0)),
      cpuLoadgen: pct(cpu1.own - cpu0.own),
      cpuMachine: pct(cpu1.machine - cpu0.machine),
      clientCount: server.probesAnswered + (warm?.requests.total ?? 0) + r.requests.total,
      serverCount,
    };
  });
}

interface HotPathMetrics {
  observe(req: unknown, status: number, durationNs: bigint, error: unknown): void;
}

/**
 * CPU ns per call of what the exporter adds to each request in a worker: WorkerMetrics.observe (the built
 * dist/metrics/worker-metrics.js, the code the servers run), for a successful request. Loaded by path at run
 * time so that type-checking bench/ does not need a build.
 */
async function hotPathNs(): Promise<number> {
  const file = pathToFileURL(path.join(ROOT, 'dist', 'metrics', 'worker-metrics.js')).href;
  const mod = (await import(file)) as { WorkerMetrics: new (o: { namespace: string; seat: number; endpointCap: number }) => HotPathMetrics };
  const metrics = new mod.WorkerMetrics({ namespace: 'gunicorn', seat: 0, endpointCap: 100 });
  const req = { method: 'GET', url: '/', headers: {} };
  const durations = Array.from({ length: 1024 }, (_, i) => BigInt(50_000 + i * 37));
  // Timed by this process's CPU time, not the wall clock: on a shared machine, time spent descheduled
  // would otherwise count as cost (only this thread runs meanwhile).
  const run = (n: number) => {
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) metrics.observe(req, 200, durations[i & 1023]!, null);
    const d = process.cpuUsage(t0);
    return ((d.user + d.system) * 1000) / n;
  };
  run(200_000); // warm-up (JIT)
  return median(Array.from({ length: 7 }, () => run(500_000)));
}

async function part1(opts: Options): Promise<void> {
  const cores = os.cpus().length;
  out(
    `\n## Part 1: throughput overhead (examples/plain.js, GET /, ${P1_WORKERS} workers)\n\n` +
      `${opts.rounds} rounds x ${P1_CONFIGS.length} configurations x (${opts.warmup} s warm-up + ${opts.seconds} s measured), ` +
      `${opts.connections} keep-alive connections, autocannon in this process (sharing the ${cores} cores)\n\n`,
  );
  const samples: P1Sample[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    const order = P1_CONFIGS.map((_, i) => P1_CONFIGS[(i + round - 1) % P1_CONFIGS.length]!);
    for (const config of order) {
      const s = await p1Run(config, round, opts);
      samples.push(s);
      const count = s.serverCount === null ? '' : `  counted ${s.serverCount}/${s.clientCount}`;
      out(
        `round ${round}/${opts.rounds}  ${config.label.padEnd(38)} ${fmt(s.rps).padStart(7)} req/s  p50 ${s.p50} ms p99 ${s.p99} ms  ` +
          `cpu% primary ${fmt(s.cpuPrimary)} workers ${fmt(s.cpuWorkers)} loadgen ${fmt(s.cpuLoadgen)} machine ${fmt(s.cpuMachine)}${count}\n`,
      );
      if (s.errors + s.non2xx > 0) fail(`part 1, ${config.label}, round ${round}: ${s.errors} errors/timeouts, ${s.non2xx} non-2xx`);
      if (s.lost > 0) fail(`part 1, ${config.label}, round ${round}: ${s.lost} worker(s) lost`);
      // The server counts every request the client saw answered, plus at most the ones in flight when the
      // warm-up and the measured load stopped (docs/design.md, L6: never fewer).
      if (s.serverCount !== null && (s.serverCount < s.clientCount || s.serverCount > s.clientCount + 2 * opts.connections)) {
        fail(`part 1, ${config.label}, round ${round}: the request counter says ${s.serverCount}, the client saw ${s.clientCount} answered`);
      }
    }
  }

  const med: Record<string, number> = {};
  const rows = P1_CONFIGS.map((c) => {
    const mine = samples.filter((s) => s.key === c.key);
    const rps = mine.map((s) => s.rps);
    med[c.key] = median(rps);
    const m = (f: (s: P1Sample) => number) => median(mine.map(f));
    return [
      c.label,
      fmt(med[c.key]!),
      `${fmt(Math.min(...rps))}–${fmt(Math.max(...rps))}`,
      `${fmt(m((s) => s.p50))} / ${fmt(m((s) => s.p99))}`,
      fmt(m((s) => s.cpuPrimary)),
      fmt(m((s) => s.cpuWorkers)),
      fmt(m((s) => (s.cpuWorkers / 100) * 1e6 / s.rps), 1),
      fmt(m((s) => s.cpuLoadgen)),
      fmt(m((s) => s.cpuMachine)),
      String(sum(mine.map((s) => s.errors + s.non2xx))),
      c.counter ? (mine.every((s) => s.serverCount !== null && s.serverCount >= s.clientCount) ? 'exact' : 'MISMATCH') : '–',
    ];
  });
  out(
    `\nMedians over ${opts.rounds} rounds (CPU in % of one core during the measured seconds; ${cores} cores = ${cores * 100}%)\n\n` +
      table(
        ['configuration', 'req/s (median)', 'min–max', 'latency p50 / p99 ms', 'CPU primary', 'CPU workers', 'worker CPU µs/req', 'CPU loadgen', 'CPU machine', 'errors', 'counter vs client'],
        rows,
      ) +
      '\n',
  );

  // Ratios: of the medians, and the median of the per-round ratios (both configurations of a pair ran
  // back to back in the same round, so background load affects them alike).
  const perRound = (a: string, b: string) => {
    const xs: number[] = [];
    for (let round = 1; round <= opts.rounds; round++) {
      const sa = samples.find((s) => s.key === a && s.round === round);
      const sb = samples.find((s) => s.key === b && s.round === round);
      if (sa && sb) xs.push(sa.rps / sb.rps);
    }
    return xs;
  };
  const cpuPerReq = (s: P1Sample) => s.cpuWorkers / s.rps;
  const perRoundCpu = (a: string, b: string) => {
    const xs: number[] = [];
    for (let round = 1; round <= opts.rounds; round++) {
      const sa = samples.find((s) => s.key === a && s.round === round);
      const sb = samples.find((s) => s.key === b && s.round === round);
      if (sa && sb) xs.push(cpuPerReq(sa) / cpuPerReq(sb));
    }
    return xs;
  };
  const ratioRows = ([
    ['on', 'off', 'target >= 0.97'],
    ['on', 'cluster', ''],
    ['off', 'cluster', ''],
  ] as const).map(([a, b, target]) => {
    const xs = perRound(a, b);
    const cpuXs = perRoundCpu(a, b);
    const ofMedians = med[a]! / med[b]!;
    const verdict = target ? (ofMedians >= 0.97 ? ', met' : ', NOT met') : '';
    return [
      `${a} / ${b}`,
      `${fmt(ofMedians, 3)}${target ? ` (${target}${verdict})` : ''}`,
      fmt(median(xs), 3),
      `${fmt(Math.min(...xs), 3)}–${fmt(Math.max(...xs), 3)}`,
      fmt(median(cpuXs), 3),
    ];
  });
  const hot = await hotPathNs();
  const offCpuUs = median(samples.filter((s) => s.key === 'off').map((s) => (s.cpuWorkers / 100) * 1e6 / s.rps));
  out(
    `\nHot path, measured in this process: WorkerMetrics.observe (dist/metrics/worker-metrics.js, what metrics add to\n` +
      `each request in a worker) takes ${fmt(hot)} ns of CPU per request (median of 7 x 500,000 calls). Against the --no-metrics\n` +
      `workers' median ${fmt(offCpuUs, 1)} µs of CPU per request, that predicts on/off = ${fmt(offCpuUs / (offCpuUs + hot / 1000), 3)} when the\n` +
      'workers are CPU-bound (plus a snapshot write per worker per second, off the request path).\n',
  );
  out(
    `\nRatios (on = ${P1_CONFIGS[0]!.label}; off = ${P1_CONFIGS[1]!.label}; cluster = ${P1_CONFIGS[2]!.label})\n\n` +
      table(['ratio', 'req/s: of medians', 'req/s: median of per-round', 'req/s: per-round min–max', 'worker CPU per request: median of per-round'], ratioRows) +
      '\n\nPer-round ratios compare two runs of the same round (back to back, so alike in background load).\n' +
      'Worker CPU per request (workers\' CPU / requests, from /proc) is less sensitive to other load than req/s;\n' +
      'a ratio above 1 means the first configuration spends more worker CPU per request.\n',
  );
}

// =============================================================================================================
// Part 2: scrape latency

interface Phase {
  ms: number[];
  errors: string[];
  /** Mean server-side collect time (promfork_scrape_duration_seconds) over the phase, ms. */
  serverMs: number;
}

interface P2Result {
  workers: number;
  bootSeconds: number;
  seriesExposed: number;
  bytes: number;
  /** Sample values per worker snapshot in the store (min, max) and their total over the workers. */
  perWorkerMin: number;
  perWorkerMax: number;
  mergedInput: number;
  idle: Phase;
  loaded: Phase;
  /** CPU per idle scrape (ms), from /proc, net of the quiet rate measured just before. */
  cpuPrimaryMs: number;
  cpuWorkersMs: number;
  loadRps: number;
  loadErrors: number;
}

async function scrapePhase(url: string, agent: http.Agent, n: number, gzip: boolean, check: (s: Scrape) => string | null): Promise<Phase & { last: Scrape | null }> {
  const ms: number[] = [];
  const errors: string[] = [];
  let first: Scrape | null = null;
  let last: Scrape | null = null;
  for (let i = 0; i < n; i++) {
    const r = await scrape(url, agent, gzip);
    const problem = r.error ?? check(r);
    if (problem) errors.push(problem);
    else {
      ms.push(r.ms);
      first ??= r;
      last = r;
    }
  }
  // Server-side mean over the phase, from the scrape-duration histogram of the first and last scrapes.
  let serverMs = NaN;
  if (first && last && first !== last) {
    const s0 = sum(sampleValues(first.body, 'promfork_scrape_duration_seconds_sum'));
    const c0 = sum(sampleValues(first.body, 'promfork_scrape_duration_seconds_count'));
    const s1 = sum(sampleValues(last.body, 'promfork_scrape_duration_seconds_sum'));
    const c1 = sum(sampleValues(last.body, 'promfork_scrape_duration_seconds_count'));
    if (c1 > c0) serverMs = ((s1 - s0) / (c1 - c0)) * 1000;
  }
  return { ms, errors, serverMs, last };
}

/**
 * Sample values in each worker snapshot file of the store (promfork-<ppid>-<pid>.json); the primary's own
 * snapshot (pid = ppid, written for the sidecar exporter) is not a worker's and is left out.
 */
function storeSeries(dir: string, ppid: number): number[] {
  const counts: number[] = [];
  for (const name of readdirSync(dir)) {
    const m = new RegExp(`^promfork-${ppid}-(\\d+)\\.json$`).exec(name);
    if (!m || Number(m[1]) === ppid) continue;
    const snap = JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as { metrics: { values: unknown[] }[] };
    counts.push(sum(snap.metrics.map((f) => f.values.length)));
  }
  return counts;
}

async function p2Run(workers: number, opts: Options): Promise<P2Result> {
  const bootTimeoutMs = Math.max(20_000, workers * 3000);
  const spec = promforkSpec(`promfork -w ${workers} many-series`, MANY_SERIES, workers, { metrics: true, series: opts.series, bootTimeoutMs });
  const t0 = performance.now();
  return withServer(spec, async (server) => {
    await waitExporterReady(server, workers, opts.series, bootTimeoutMs);
    const bootSeconds = (performance.now() - t0) / 1000;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const check = (r: Scrape) => {
        const app = sampleValues(r.body, 'bench_app_requests_total').length;
        const running = sampleValues(r.body, 'gunicorn_worker_state', 'state="running"').length;
        return app === opts.series && running === workers ? null : `incomplete scrape: ${app} app series, ${running} running seats`;
      };
      for (let i = 0; i < WARMUP_SCRAPES; i++) await scrape(server.metricsUrl, agent, opts.gzip);
      // CPU per scrape: the idle phase's CPU minus what the same processes use meanwhile without scrapes
      // (heartbeats, the 1 s flush timer, the 1 s /proc sampler), measured over a quiet period just before.
      const pids = [...server.servingPids];
      const cpu = () => ({ primary: cpuSeconds(server.pid), workers: sum(pids.map(cpuSeconds)), at: performance.now() });
      const q0 = cpu();
      await sleep(QUIET_MS);
      const q1 = cpu();
      const idle = await scrapePhase(server.metricsUrl, agent, opts.scrapes, opts.gzip, check);
      const q2 = cpu();
      const perScrapeMs = (k: 'primary' | 'workers') => {
        const quietRate = (q1[k] - q0[k]) / (q1.at - q0.at); // CPU s per wall ms
        return ((q2[k] - q1[k] - quietRate * (q2.at - q1.at)) / opts.scrapes) * 1000;
      };
      const bg = backgroundLoad(server.url, opts.connections);
      // The load is stopped whatever happens; its own failure is reported after the scrapes'.
      const loaded = await sleep(1000)
        .then(() => scrapePhase(server.metricsUrl, agent, opts.scrapes, opts.gzip, check))
        .finally(() => bg.stop().catch(() => undefined));
      const loadResult = await bg.stop();
      const perWorker = storeSeries(multiprocDirOf(spec)!, server.pid);
      return {
        workers,
        bootSeconds,
        seriesExposed: idle.last ? seriesCount(idle.last.body) : NaN,
        bytes: idle.last?.bytes ?? NaN,
        perWorkerMin: Math.min(...perWorker),
        perWorkerMax: Math.max(...perWorker),
        mergedInput: sum(perWorker),
        idle,
        loaded,
        cpuPrimaryMs: perScrapeMs('primary'),
        cpuWorkersMs: perScrapeMs('workers'),
        loadRps: loadResult.rps,
        loadErrors: loadResult.errors + loadResult.timeouts + loadResult.non2xx,
      };
    } finally {
      agent.destroy();
    }
  });
}

interface P2Baseline {
  workers: number;
  idle: Phase;
  loaded: Phase;
  loadRps: number;
  loadErrors: number;
}

/** The same phases against prom-client's AggregatorRegistry (node:cluster), serving the same app. */
async function p2Cluster(workers: number, opts: Options): Promise<P2Baseline> {
  const spec = clusterSpec(`prom-client cluster -w ${workers} many-series`, workers, opts.series);
  return withServer(spec, async (server) => {
    const check = (r: Scrape) => {
      const app = sampleValues(r.body, 'bench_app_requests_total').length;
      return app === opts.series ? null : `incomplete scrape: ${app} app series`;
    };
    const deadline = performance.now() + spec.bootTimeoutMs!;
    for (;;) {
      const r = await scrape(server.metricsUrl, false, false);
      if (r.error === null && check(r) === null) break;
      if (performance.now() > deadline) throw new Error(`${spec.label}: not ready (${r.error ?? check(r)})`);
      await sleep(200);
    }
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < WARMUP_SCRAPES; i++) await scrape(server.metricsUrl, agent, opts.gzip);
      const idle = await scrapePhase(server.metricsUrl, agent, opts.scrapes, opts.gzip, check);
      const bg = backgroundLoad(server.url, opts.connections);
      const loaded = await sleep(1000)
        .then(() => scrapePhase(server.metricsUrl, agent, opts.scrapes, opts.gzip, check))
        .finally(() => bg.stop().catch(() => undefined));
      const loadResult = await bg.stop();
      return { workers, idle, loaded, loadRps: loadResult.rps, loadErrors: loadResult.errors + loadResult.timeouts + loadResult.non2xx };
    } finally {
      agent.destroy();
    }
  });
}

async function part2(opts: Options): Promise<void> {
  out(
    `\n## Part 2: scrape latency (bench/apps/many-series.js, ${opts.series} app series per worker)\n\n` +
      `per worker count: boot, wait until /metrics shows every seat with a snapshot, ${WARMUP_SCRAPES} warm-up scrapes, then ` +
      `${opts.scrapes} sequential scrapes idle and ${opts.scrapes} under load (${opts.connections} keep-alive connections on GET /, ` +
      `autocannon in a worker thread); one keep-alive scrape connection; ${opts.gzip ? 'Accept-Encoding: gzip' : 'no compression'}\n\n`,
  );
  const results: P2Result[] = [];
  const baselines: P2Baseline[] = [];
  for (const [i, workers] of opts.workers.entries()) {
    let r: P2Result;
    let b: P2Baseline | null = null;
    const baseline = async () => {
      try {
        b = await p2Cluster(workers, opts);
      } catch (err) {
        fail(`part 2, prom-client, ${workers} workers: ${(err as Error).message}`);
      }
    };
    try {
      // The order alternates from one worker count to the next.
      if (i % 2 === 1) await baseline();
      r = await p2Run(workers, opts);
      if (i % 2 === 0) await baseline();
    } catch (err) {
      fail(`part 2, ${workers} workers: ${(err as Error).message}`);
      continue;
    }
    results.push(r);
    if (b !== null) {
      const base: P2Baseline = b;
      baselines.push(base);
      for (const [phase, p] of [['idle', base.idle], ['under load', base.loaded]] as const) {
        if (p.errors.length) fail(`part 2, prom-client, ${workers} workers, ${phase}: ${p.errors.length} failed scrapes, first: ${p.errors[0]}`);
      }
      out(
        `${String(workers).padStart(2)} workers, prom-client: idle p50 ${fmt(percentile(base.idle.ms, 50), 1)} ms p99 ${fmt(percentile(base.idle.ms, 99), 1)} ms; ` +
          `under load (${fmt(base.loadRps)} req/s) p50 ${fmt(percentile(base.loaded.ms, 50), 1)} ms p99 ${fmt(percentile(base.loaded.ms, 99), 1)} ms\n`,
      );
    }
    for (const [phase, p] of [['idle', r.idle], ['under load', r.loaded]] as const) {
      if (p.errors.length) fail(`part 2, ${workers} workers, ${phase}: ${p.errors.length} failed scrapes, first: ${p.errors[0]}`);
    }
    if (r.loadErrors) fail(`part 2, ${workers} workers: the load got ${r.loadErrors} errors/timeouts/non-2xx`);
    out(
      `${String(workers).padStart(2)} workers: ready in ${fmt(r.bootSeconds, 1)} s; idle p50 ${fmt(percentile(r.idle.ms, 50), 1)} ms p99 ${fmt(percentile(r.idle.ms, 99), 1)} ms; ` +
        `under load (${fmt(r.loadRps)} req/s) p50 ${fmt(percentile(r.loaded.ms, 50), 1)} ms p99 ${fmt(percentile(r.loaded.ms, 99), 1)} ms\n`,
    );
  }
  if (results.length === 0) return;
  const row = (r: P2Result, name: string, p: Phase) => [
    `${r.workers} workers, ${name}`,
    fmt(percentile(p.ms, 50), 1),
    fmt(percentile(p.ms, 99), 1),
    fmt(Math.max(...p.ms), 1),
    fmt(p.serverMs, 1),
    `${p.ms.length}/${p.ms.length + p.errors.length}`,
    name === 'idle' ? fmt(r.cpuPrimaryMs, 1) : '–',
    name === 'idle' ? fmt(r.cpuWorkersMs, 1) : '–',
    name === 'idle' ? '–' : fmt(r.loadRps),
    fmt(r.seriesExposed),
    r.perWorkerMin === r.perWorkerMax ? fmt(r.perWorkerMin) : `${fmt(r.perWorkerMin)}–${fmt(r.perWorkerMax)}`,
    fmt(r.mergedInput),
    fmt(r.bytes / 1024),
  ];
  out(
    `\n${table(
      ['workers, phase', 'p50 ms', 'p99 ms', 'max ms', 'server-side mean ms', 'ok scrapes', 'CPU primary ms/scrape', 'CPU workers ms/scrape', 'load req/s', 'series exposed', 'series per worker (store)', 'series merged', 'KiB on the wire'],
      results.flatMap((r) => [row(r, 'idle', r.idle), row(r, 'under load', r.loaded)]),
    )}\n`,
  );
  // The exporter issue's targets: p99 against prom-client's in the same run.
  const targets: string[][] = [];
  for (const r of results) {
    const base = baselines.find((x) => x.workers === r.workers);
    if (!base) continue;
    for (const [name, mine, theirs] of [['idle', r.idle, base.idle], ['under load', r.loaded, base.loaded]] as const) {
      const ratio = percentile(mine.ms, 99) / percentile(theirs.ms, 99);
      const limit = r.workers >= 32 || name === 'idle' ? 0.5 : r.workers <= 2 ? 1 : null;
      targets.push([
        `${r.workers} workers, ${name}`,
        `${fmt(percentile(mine.ms, 50), 1)} / ${fmt(percentile(mine.ms, 99), 1)}`,
        `${fmt(percentile(theirs.ms, 50), 1)} / ${fmt(percentile(theirs.ms, 99), 1)}`,
        fmt(ratio, 2),
        limit === null ? '–' : `<= ${limit}: ${ratio <= limit ? 'met' : 'NOT met'}`,
      ]);
    }
  }
  if (targets.length) {
    out(`\n${table(['workers, phase', 'promfork p50 / p99 ms', 'prom-client p50 / p99 ms', 'p99 ratio', 'target'], targets)}\n`);
  }
  out(
    '\nseries exposed = sample lines in one idle scrape (the app counter has no worker label, so the workers\' series\n' +
      'sum into one set); series merged = sample values in all worker snapshots, which the primary merges when they changed;\n' +
      'server-side mean = promfork_scrape_duration_seconds (collect: flush request, store read, merge, format) over the phase;\n' +
      `CPU ms/scrape (idle only) = CPU of the primary / of all workers (from /proc, 10 ms ticks) during the idle phase,\n` +
      `minus their CPU rate over the ${QUIET_MS / 1000} s without scrapes just before, per scrape.\n`,
  );
}

// =============================================================================================================
// Part 3: blocked worker

interface BlockReport {
  pid: number;
  start: number;
  end: number;
}

function getBlock(url: string, ms: number): Promise<BlockReport> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/block?ms=${ms}`, { agent: false, timeout: ms + 30_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          const b = JSON.parse(body) as BlockReport;
          if (res.statusCode !== 200 || !Number.isFinite(b.start)) throw new Error(`HTTP ${res.statusCode}: ${body}`);
          resolve(b);
        } catch (err) {
          reject(new Error(`GET /block: ${(err as Error).message}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('GET /block: no answer')));
    req.on('error', reject);
  });
}

interface P3Result {
  label: string;
  blockSeconds: number;
  ok: number;
  total: number;
  /** Scrapes that succeeded and ended while the worker was still blocked. */
  okDuringBlock: number;
  maxMs: number;
  okMaxMs: number;
  errors: string[];
  /** promfork: the blocked worker's seat still in the scrape, and its snapshot age at most. */
  maxSnapshotAge: number;
}

async function p3Run(kind: 'promfork' | 'cluster', blockSeconds: number, opts: Options): Promise<P3Result> {
  const label = kind === 'promfork' ? `promfork -w ${P3_WORKERS}` : `node:cluster ${P3_WORKERS} workers + AggregatorRegistry`;
  const spec = kind === 'promfork'
    ? promforkSpec(label, MANY_SERIES, P3_WORKERS, { metrics: true, series: opts.series })
    : clusterSpec(label, P3_WORKERS);
  return withServer(spec, async (server) => {
    if (kind === 'promfork') await waitExporterReady(server, P3_WORKERS, opts.series, 20_000);
    const agent = new http.Agent({ keepAlive: true });
    try {
      for (let i = 0; i < 3; i++) {
        const w = await scrape(server.metricsUrl, agent, opts.gzip);
        if (w.error) throw new Error(`${label}: warm-up scrape failed: ${w.error}`);
      }
      const blockMs = blockSeconds * 1000;
      // Scrapes are started on a schedule (not one after the other), all inside the block: a Prometheus
      // server does not wait for a slow scrape before the next interval either.
      const firstAt = 300;
      const spacing = Math.min(350, Math.max(20, (blockMs - firstAt - 1000) / P3_SCRAPES));
      const t0 = performance.now();
      const block = getBlock(server.url, blockMs);
      const pending: Promise<Scrape>[] = [];
      for (let i = 0; i < P3_SCRAPES; i++) {
        const wait = t0 + firstAt + i * spacing - performance.now();
        if (wait > 0) await sleep(wait);
        pending.push(scrape(server.metricsUrl, agent, opts.gzip));
      }
      const [scrapes, b] = await Promise.all([Promise.all(pending), block]);
      if (!server.servingPids.has(b.pid)) throw new Error(`${label}: /block was served by pid ${b.pid}, not a known worker`);
      const errors: string[] = [];
      let ok = 0;
      let okDuringBlock = 0;
      let okMaxMs = 0;
      let maxSnapshotAge = NaN;
      for (const s of scrapes) {
        let problem = s.error;
        if (!problem && kind === 'promfork') {
          // Law L3 (docs/design.md): the blocked worker is served from its last snapshot, not dropped from the scrape.
          const app = sampleValues(s.body, 'bench_app_requests_total').length;
          const seats = sampleValues(s.body, 'gunicorn_worker_requests_total').length;
          if (app !== opts.series || seats !== P3_WORKERS) problem = `incomplete scrape: ${app} app series, ${seats} seats`;
          const ages = sampleValues(s.body, 'promfork_worker_snapshot_age_seconds');
          maxSnapshotAge = Math.max(Number.isFinite(maxSnapshotAge) ? maxSnapshotAge : 0, ...ages);
        }
        if (!problem && s.startedAt < b.start) problem = 'started before the block';
        if (problem) {
          errors.push(`${fmt(s.ms)} ms: ${problem}`);
          continue;
        }
        ok++;
        okMaxMs = Math.max(okMaxMs, s.ms);
        if (s.endedAt <= b.end) okDuringBlock++;
      }
      await sleep(200);
      return {
        label,
        blockSeconds,
        ok,
        total: scrapes.length,
        okDuringBlock,
        maxMs: Math.max(...scrapes.map((s) => s.ms)),
        okMaxMs,
        errors,
        maxSnapshotAge,
      };
    } finally {
      agent.destroy();
    }
  });
}

async function part3(opts: Options): Promise<void> {
  out(
    `\n## Part 3: blocked worker (${P3_WORKERS} workers, one busy-loops its event loop on GET /block)\n\n` +
      `${P3_SCRAPES} scrapes of /metrics started during the block (from 0.3 s after the block request, at fixed intervals, ` +
      'not waiting for each other)\n\n',
  );
  const blocks = [opts.blockSeconds, ...(opts.longBlockSeconds ? [opts.longBlockSeconds] : [])];
  const results: P3Result[] = [];
  for (const blockSeconds of blocks) {
    for (const kind of ['promfork', 'cluster'] as const) {
      let r: P3Result;
      try {
        r = await p3Run(kind, blockSeconds, opts);
      } catch (err) {
        fail(`part 3, ${kind}, ${blockSeconds} s block: ${(err as Error).message}`);
        continue;
      }
      results.push(r);
      out(
        `${r.label}, ${blockSeconds} s block: ${r.ok}/${r.total} scrapes succeeded (${r.okDuringBlock} while the worker was blocked), ` +
          `max latency ${fmt(r.maxMs)} ms${r.errors.length ? `; failures: ${[...new Set(r.errors.map((e) => e.replace(/^[\d,]+ ms: /, '')))].join('; ')}` : ''}\n`,
      );
      // promfork must answer every scrape during the block (docs/design.md, L3); the baseline's failures are the finding.
      if (kind === 'promfork' && (r.ok < r.total || r.okDuringBlock < r.total)) {
        fail(`part 3, promfork, ${blockSeconds} s block: ${r.ok}/${r.total} scrapes succeeded, ${r.okDuringBlock} during the block`);
      }
    }
  }
  if (results.length === 0) return;
  out(
    `\n${table(
      ['server, block', 'scrapes ok', 'ok while blocked', 'max latency ms', 'max latency of ok ms', 'blocked seat snapshot age s (max)', 'failures'],
      results.map((r) => [
        `${r.label}, ${r.blockSeconds} s`,
        `${r.ok}/${r.total}`,
        `${r.okDuringBlock}/${r.total}`,
        fmt(r.maxMs),
        r.ok ? fmt(r.okMaxMs) : '–',
        Number.isFinite(r.maxSnapshotAge) ? fmt(r.maxSnapshotAge, 1) : '–',
        r.errors.length ? [...new Set(r.errors.map((e) => e.replace(/^[\d,]+ ms: /, '')))].join('; ') : '–',
      ]),
    )}\n`,
  );
}

// =============================================================================================================

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  requireBuild();
  const cores = os.cpus().length;
  const p1 = opts.parts.has(1) ? opts.rounds * P1_CONFIGS.length * (opts.warmup + opts.seconds + 2) : 0;
  const p2 = opts.parts.has(2) ? sum(opts.workers.map((w) => 8 + w * 0.4 + opts.scrapes * (0.005 + w * 0.004) * 2.5 + QUIET_MS / 1000)) : 0;
  const p3 = opts.parts.has(3) ? sum([opts.blockSeconds, opts.longBlockSeconds].filter((b) => b > 0).map((b) => 2 * (b + 4))) : 0;
  out(
    [
      '# promfork exporter benchmark',
      '',
      machineLine(),
      `note: a shared ${cores}-core machine: the servers, the load generator and the scraper all share these ${cores} cores,`,
      '      and other jobs may run; compare ratios from alternating runs within this one run, not absolute figures.',
      `dist/cli.js built ${distMtime()}; servers log at --log-level info; each promfork server gets a fresh --multiproc-dir`,
      `parts ${[...opts.parts].sort().join(',')}; expected duration: about ${Math.ceil((p1 + p2 + p3) / 10) * 10} s`,
      '',
    ].join('\n'),
  );
  const started = performance.now();
  const builtAt = distMtime();
  const parts: [number, (o: Options) => Promise<void>][] = [[1, part1], [2, part2], [3, part3]];
  for (const [n, run] of parts) {
    if (!opts.parts.has(n)) continue;
    try {
      await run(opts);
    } catch (err) {
      fail(`part ${n}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
  out(`\ntotal time ${fmt((performance.now() - started) / 1000)} s\n`);
  reportEnd(failures, builtAt);
}

runBench(main);
