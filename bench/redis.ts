// Redis benchmark: what the Redis store costs Redis, the request path and a scrape.
// A benchmark, not a test: it prints tables, and exits 1 if any request, scrape or check failed.
//
//   npm run build && node --import tsx bench/redis.ts [--parts 1,2,3] [--help]
//
// It starts its own redis-server on a free loopback port (no persistence) and stops it by pid at the end, also on
// errors and on exit. Every promfork server and sidecar it starts is stopped by pid as well (SIGTERM, then SIGKILL
// to its process group; see bench/lib.ts, which also SIGKILLs whatever is left at exit).
//
// Part 1, Redis commands per HTTP request: examples/plain.js, 2 async workers in Redis mode. INFO commandstats
//   deltas (every command Redis executed, by command; this script's own INFO calls removed) over an idle window,
//   a window paced at about 1,000 requests/s (autocannon's overallRate) and one at full speed, divided by the
//   requests answered. Target: at most 0.01 commands per request (the Python exporter issued about 58).
// Part 2, throughput: Redis mode vs directory mode vs --no-metrics, 2 async workers, alternating within each round
//   (the order rotates), fresh server per run, median req/s and ratios.
// Part 3, scrape latency with many servers in one Redis: N promfork servers (default 10) x W workers (default 8),
//   each with its own --metrics-instance, started one after another (each waited for until every worker served),
//   then the sidecar (`promfork exporter --redis --all-instances`): p50/p99 of sequential GET /metrics and the series
//   count; also one instance's sidecar (--metrics-instance pod-0) and pod-0's primary's own /metrics.
// Part 4, Redis topologies: the same server (2 async workers) on one redis-server, on a Redis Cluster of 3 masters
//   and through Redis Sentinel (a master, a replica, 3 sentinels), all started here on loopback: the commands every
//   data node executed (INFO commandstats on each) during a paced window, per flush (a worker's or the primary's
//   snapshot write: one SET each) and how many masters the run touched; then per scrape of the primary and of the
//   sidecar. The sentinels' own commands are counted apart.
//
// The load generator (autocannon) runs in this process and shares the cores with the servers and Redis.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import {
  CLI,
  PLAIN_APP,
  ROOT,
  Server,
  cleanEnv,
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
  probe,
  requireBuild,
  signalGroup,
  sleep,
  table,
  type ServerSpec,
  parseOrExit,
  failureLog,
  freshDirs,
  multiprocDirOf,
  reportEnd,
  runBench,
  stopGroup,
} from './lib.js';
import { sampleValues, scrape, seriesCount, sum, type Scrape } from './scrape.js';
import { startRedisServer, type CommandStats, type RedisServer } from '../test/helpers/redis-server.js';
import { startRedisCluster, startRedisSentinel } from '../test/helpers/redis-topology.js';

const REDIS_SERVER = process.env.PROMFORK_BENCH_REDIS_SERVER ?? 'redis-server';
const P12_WORKERS = 2;
const WARMUP_SCRAPES = 5;

// ---- options ----

const USAGE = `usage: node --import tsx bench/redis.ts [options]

  --parts LIST            parts to run, of 1 (Redis commands per request), 2 (throughput), 3 (scrape latency
                          with many servers), 4 (one server vs Cluster vs Sentinel) (default 1,2,3)
  --connections N         parts 1 and 2: concurrent client connections (default 10)
  --rate N                part 1: requests/s of the paced window (autocannon overallRate, default 1000)
  --paced-seconds N       part 1: length of the paced window (default 20)
  --full-seconds N        part 1: length of the full-speed window (default 10)
  --idle-seconds N        part 1: length of the idle window (default 10)
  --seconds N             part 2: measured seconds per run (default 5)
  --rounds N              part 2: rounds; each runs the 3 configurations once (default 5)
  --warmup N              part 2: warm-up seconds before each measured run, not counted (default 1)
  --instances N           part 3: promfork servers sharing the Redis (default 10)
  --instance-workers N    part 3: workers per server (default 8)
  --requests N            part 3: requests sent to each server after boot, on fresh connections (default 16)
  --scrapes N             part 3: sequential scrapes measured per target (default 100)
  --boot-budget N         part 3: stop starting servers after N seconds of booting, and run with those (default 150)
  --topology-seconds N    part 4: length of the paced window in each topology (default 10; paced at --rate)
  -h, --help              this text

Needs a build (npm run build: the servers run dist/cli.js) and redis-server on the PATH
(or PROMFORK_BENCH_REDIS_SERVER=/path/to/redis-server).
`;

interface Options {
  parts: Set<number>;
  connections: number;
  rate: number;
  pacedSeconds: number;
  fullSeconds: number;
  idleSeconds: number;
  seconds: number;
  rounds: number;
  warmup: number;
  instances: number;
  instanceWorkers: number;
  requests: number;
  scrapes: number;
  bootBudget: number;
  topologySeconds: number;
}

const positiveInt = (name: string, raw: string, min: number) => positiveIntOr(name, raw, min, USAGE);

function parseOptions(argv: string[]): Options {
  const v = parseOrExit(USAGE, () =>
    parseArgs({
      args: argv,
      options: {
        parts: { type: 'string', default: '1,2,3' },
        connections: { type: 'string', default: '10' },
        rate: { type: 'string', default: '1000' },
        'paced-seconds': { type: 'string', default: '20' },
        'full-seconds': { type: 'string', default: '10' },
        'idle-seconds': { type: 'string', default: '10' },
        seconds: { type: 'string', default: '5' },
        rounds: { type: 'string', default: '5' },
        warmup: { type: 'string', default: '1' },
        instances: { type: 'string', default: '10' },
        'instance-workers': { type: 'string', default: '8' },
        requests: { type: 'string', default: '16' },
        scrapes: { type: 'string', default: '100' },
        'boot-budget': { type: 'string', default: '150' },
        'topology-seconds': { type: 'string', default: '10' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values,
  );
  const parts = new Set(
    v.parts
      .split(',')
      .filter((s) => s.trim() !== '')
      .map((s) => positiveInt('parts', s.trim(), 1)),
  );
  if (parts.size === 0 || [...parts].some((p) => p > 4)) {
    process.stderr.write(`bench: --parts takes 1, 2, 3 and/or 4, got ${JSON.stringify(v.parts)}\n\n${USAGE}`);
    process.exit(2);
  }
  return {
    parts,
    connections: positiveInt('connections', v.connections, 1),
    rate: positiveInt('rate', v.rate, 1),
    pacedSeconds: positiveInt('paced-seconds', v['paced-seconds'], 1),
    fullSeconds: positiveInt('full-seconds', v['full-seconds'], 1),
    idleSeconds: positiveInt('idle-seconds', v['idle-seconds'], 1),
    seconds: positiveInt('seconds', v.seconds, 1),
    rounds: positiveInt('rounds', v.rounds, 1),
    warmup: positiveInt('warmup', v.warmup, 0),
    instances: positiveInt('instances', v.instances, 1),
    instanceWorkers: positiveInt('instance-workers', v['instance-workers'], 1),
    requests: positiveInt('requests', v.requests, 0),
    scrapes: positiveInt('scrapes', v.scrapes, 1),
    bootBudget: positiveInt('boot-budget', v['boot-budget'], 1),
    topologySeconds: positiveInt('topology-seconds', v['topology-seconds'], 1),
  };
}

// ---- failures: reported as they happen, and the exit status at the end ----

const { failures, fail } = failureLog();

const out = (s: string) => process.stdout.write(s);

// ---- fresh store directories (directory mode), removed at exit ----

const freshMultiprocDir = freshDirs('promfork-bench-redis-');

// ---- redis-server: started on a free loopback port, stopped by pid ----

/** INFO commands this script sent (removed from the deltas). */
let ownInfoCalls = 0;

/** INFO commandstats, counted as this script's own INFO. */
function commandStats(redis: RedisServer): Promise<CommandStats> {
  ownInfoCalls++;
  return redis.commandStats();
}

/** What Redis executed between two INFO commandstats, minus this script's own INFO calls in between. */
function statsDelta(before: CommandStats, after: CommandStats, ownInfo: number): CommandStats {
  const d: CommandStats = new Map();
  for (const [cmd, a] of after) {
    const b = before.get(cmd) ?? { calls: 0, usec: 0 };
    let calls = a.calls - b.calls;
    let usec = a.usec - b.usec;
    if (cmd === 'info' && ownInfo > 0) {
      // Ours: take their share of the time out too (INFO is the only command this script sends meanwhile).
      usec = calls > 0 ? usec * Math.max(0, calls - ownInfo) / calls : 0;
      calls -= ownInfo;
    }
    if (calls > 0) d.set(cmd, { calls, usec });
  }
  return d;
}

const totalCalls = (s: CommandStats) => [...s.values()].reduce((a, v) => a + v.calls, 0);
const totalUsec = (s: CommandStats) => [...s.values()].reduce((a, v) => a + v.usec, 0);

/** Measure what Redis executes while `body` runs (no other INFO may be sent meanwhile). */
async function withCommandStats<T>(redis: RedisServer, body: () => Promise<T>): Promise<{ result: T; stats: CommandStats; redisCpu: number; seconds: number }> {
  const before = await commandStats(redis);
  const infos = ownInfoCalls;
  const cpu0 = cpuSeconds(redis.pid);
  const t0 = performance.now();
  const result = await body();
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = cpuSeconds(redis.pid);
  const after = await commandStats(redis);
  // The INFO that took `before` is counted in `after` (a command is counted once it has run), and so is any other
  // sent meanwhile; the INFO that took `after` is not: ownInfoCalls - infos = (the ones meanwhile) + 1.
  const ownInfo = ownInfoCalls - infos;
  return { result, stats: statsDelta(before, after, ownInfo), redisCpu: cpu1 - cpu0, seconds };
}

// ---- the sidecar (`promfork exporter`): no "Listening at:" line, so not a lib.ts Server ----

const sidecarsLive = new Set<Sidecar>();
process.on('exit', () => {
  for (const s of sidecarsLive) signalGroup(s.pid, 'SIGKILL');
});

class Sidecar {
  readonly pid: number;
  metricsUrl = '';
  private readonly proc: ChildProcess;
  private readonly tailLines: string[] = [];
  private partial = '';
  private exitInfo: string | null = null;
  private readonly exited: Promise<void>;
  private onLine: (() => void) | null = null;

  private constructor(
    readonly label: string,
    argv: string[],
  ) {
    this.proc = spawn(process.execPath, argv, { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    if (this.proc.pid === undefined) throw new Error(`${label}: could not spawn`);
    this.pid = this.proc.pid;
    sidecarsLive.add(this);
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.exitInfo = signal ? `signal ${signal}` : `code ${code}`;
        sidecarsLive.delete(this);
        this.onLine?.();
        resolve();
      });
    });
    const feed = (chunk: Buffer) => {
      const lines = (this.partial + chunk.toString()).split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) {
        this.tailLines.push(line);
        if (this.tailLines.length > 40) this.tailLines.shift();
        const m = /Serving metrics on (https?:\/\/[^\s]+)/.exec(line);
        if (m && !this.metricsUrl) this.metricsUrl = m[1]!;
      }
      this.onLine?.();
    };
    this.proc.stdout!.on('data', feed);
    this.proc.stderr!.on('data', feed);
  }

  get tail(): string {
    return this.tailLines.join('\n');
  }

  static async start(label: string, argv: string[], timeoutMs = 20_000): Promise<Sidecar> {
    const s = new Sidecar(label, argv);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`${label}: no "Serving metrics on" line after ${timeoutMs} ms`)), timeoutMs);
        const finish = (err?: Error) => {
          clearTimeout(timer);
          s.onLine = null;
          if (err) reject(err);
          else resolve();
        };
        s.onLine = () => {
          if (s.exitInfo) finish(new Error(`${label}: exited (${s.exitInfo}) before it served`));
          else if (s.metricsUrl) finish();
        };
        s.onLine();
      });
    } catch (err) {
      await s.stop();
      throw new Error(`${(err as Error).message}; last output:\n${s.tail}`, { cause: err });
    }
    return s;
  }

  async stop(deadlineMs = 10_000): Promise<void> {
    await stopGroup(this.pid, this.exitInfo !== null, this.exited, deadlineMs, this.label);
    sidecarsLive.delete(this);
  }
}

// ---- server specs ----

type Mode = 'redis' | 'directory' | 'off';

function promforkSpec(label: string, mode: Mode, workers: number, redisPort: number, instance: string, bootTimeoutMs?: number): ServerSpec {
  const argv = [CLI, PLAIN_APP, '-w', String(workers), '-k', 'async', '-b', '127.0.0.1:0', '--log-level', 'info'];
  if (mode === 'off') argv.push('--no-metrics');
  else argv.push('--metrics-port', '0', '--metrics-bind', '127.0.0.1');
  if (mode === 'directory') argv.push('--multiproc-dir', freshMultiprocDir());
  if (mode === 'redis') argv.push('--redis', '--redis-host', '127.0.0.1', '--redis-port', String(redisPort), '--metrics-instance', instance);
  return { label, argv, workers, metrics: mode !== 'off', ...(bootTimeoutMs !== undefined ? { bootTimeoutMs } : {}) };
}

const REQUEST_COUNTER = 'gunicorn_worker_requests_total';

/** Sum of the request counter in `url`'s /metrics, or null (and a failure) if the scrape failed. */
async function countedRequests(url: string, what: string): Promise<number | null> {
  const r = await scrape(url, false);
  if (r.error !== null) {
    fail(`${what}: scrape failed: ${r.error}`);
    return null;
  }
  return sum(sampleValues(r.body, REQUEST_COUNTER));
}

/** Check law L6 (docs/design.md): the server counted every answered request, and at most the ones in flight beyond. */
function checkCount(what: string, counted: number | null, answered: number, inFlight: number): string {
  if (counted === null) return 'n/a';
  if (counted < answered || counted > answered + inFlight) {
    fail(`${what}: the request counter says ${counted}, the client saw ${answered} answered`);
    return `MISMATCH ${counted}/${answered}`;
  }
  return counted === answered ? 'exact' : `ok (+${counted - answered} in flight)`;
}

// =============================================================================================================
// Part 1: Redis commands per HTTP request

interface Window {
  label: string;
  seconds: number;
  requests: number;
  stats: CommandStats;
  redisCpu: number;
  errors: number;
}

function paced(url: string, seconds: number, connections: number, rate: number): Promise<autocannon.Result> {
  return autocannon({ url: `${url}/`, connections, duration: seconds, pipelining: 1, overallRate: rate });
}

async function part1(opts: Options, redis: RedisServer): Promise<void> {
  out(
    `\n## Part 1: Redis commands per HTTP request (examples/plain.js, GET /, ${P12_WORKERS} async workers, Redis mode)\n\n` +
      `windows: idle ${opts.idleSeconds} s, paced ~${fmt(opts.rate)} req/s for ${opts.pacedSeconds} s (autocannon overallRate), ` +
      `full speed for ${opts.fullSeconds} s; ${opts.connections} keep-alive connections.\n` +
      'Commands: INFO commandstats deltas (everything Redis executed; this script\'s own INFO calls removed).\n\n',
  );
  const spec = promforkSpec('promfork Redis mode', 'redis', P12_WORKERS, redis.port, 'bench-commands');
  const server = await Server.start(spec);
  const windows: Window[] = [];
  try {
    await sleep(2000); // past the start: connections, first snapshots
    const idle = await withCommandStats(redis, () => sleep(opts.idleSeconds * 1000));
    windows.push({ label: 'idle (no requests)', seconds: idle.seconds, requests: 0, stats: idle.stats, redisCpu: idle.redisCpu, errors: 0 });
    const p = await withCommandStats(redis, () => paced(server.url, opts.pacedSeconds, opts.connections, opts.rate));
    windows.push({
      label: `paced, ~${fmt(opts.rate)} req/s`,
      seconds: p.result.duration,
      requests: p.result.requests.total,
      stats: p.stats,
      redisCpu: p.redisCpu,
      errors: p.result.errors + p.result.timeouts + p.result.non2xx,
    });
    const f = await withCommandStats(redis, () => load(server.url, opts.fullSeconds, opts.connections));
    windows.push({
      label: 'full speed',
      seconds: f.result.duration,
      requests: f.result.requests.total,
      stats: f.stats,
      redisCpu: f.redisCpu,
      errors: f.result.errors + f.result.timeouts + f.result.non2xx,
    });
    const answered = server.probesAnswered + p.result.requests.total + f.result.requests.total;
    const counted = await countedRequests(server.metricsUrl, 'part 1');
    const check = checkCount('part 1', counted, answered, 2 * opts.connections);
    const lost = [...server.servingPids].filter((pid) => !pidAlive(pid)).length;
    if (lost > 0) fail(`part 1: ${lost} worker(s) lost`);
    for (const w of windows) if (w.errors > 0) fail(`part 1, ${w.label}: ${w.errors} errors/timeouts/non-2xx`);

    out(
      table(
        ['window', 'seconds', 'requests', 'req/s', 'Redis commands', 'commands/s', 'commands / request', 'Redis µs / request', 'Redis CPU %'],
        windows.map((w) => [
          w.label,
          fmt(w.seconds, 1),
          fmt(w.requests),
          fmt(w.requests / w.seconds),
          fmt(totalCalls(w.stats)),
          fmt(totalCalls(w.stats) / w.seconds, 2),
          w.requests > 0 ? fmt(totalCalls(w.stats) / w.requests, 5) : '–',
          w.requests > 0 ? fmt(totalUsec(w.stats) / w.requests, 4) : '–',
          fmt((100 * w.redisCpu) / w.seconds, 1),
        ]),
      ) + '\n\n',
    );
    const commands = [...new Set(windows.flatMap((w) => [...w.stats.keys()]))].sort();
    out(
      'By command (calls in the window; per second in parentheses)\n\n' +
        table(
          ['command', ...windows.map((w) => w.label)],
          commands.map((c) => [c, ...windows.map((w) => `${fmt(w.stats.get(c)?.calls ?? 0)} (${fmt((w.stats.get(c)?.calls ?? 0) / w.seconds, 2)}/s)`)]),
        ) +
        '\n\n',
    );
    const pacedWin = windows[1]!;
    const perReq = totalCalls(pacedWin.stats) / pacedWin.requests;
    out(
      `Target (paced window): at most 0.01 Redis commands per request: ${fmt(perReq, 5)} -> ${perReq <= 0.01 ? 'MET' : 'NOT MET'} ` +
        `(the Python exporter: ~58, i.e. ${fmt(58 / perReq)}x more)\n` +
        `Request counter vs requests answered (probes + paced + full speed): ${check}; errors: ${sum(windows.map((w) => w.errors))}; workers lost: ${lost}\n`,
    );
  } finally {
    await server.stop();
  }
}

// =============================================================================================================
// Part 2: throughput, Redis mode vs directory mode vs --no-metrics

interface P2Config {
  key: Mode;
  label: string;
}

const P2_CONFIGS: P2Config[] = [
  { key: 'redis', label: `promfork -w ${P12_WORKERS}, Redis mode` },
  { key: 'directory', label: `promfork -w ${P12_WORKERS}, directory mode` },
  { key: 'off', label: `promfork -w ${P12_WORKERS}, --no-metrics` },
];

interface P2Sample {
  key: Mode;
  round: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  lost: number;
  cpuPrimary: number;
  cpuWorkers: number;
  cpuRedis: number;
  cpuLoadgen: number;
  cpuMachine: number;
  commandsPerSecond: number;
  check: string;
}

async function p2Run(config: P2Config, round: number, opts: Options, redis: RedisServer): Promise<P2Sample> {
  const spec = promforkSpec(config.label, config.key, P12_WORKERS, redis.port, `bench-tput-${round}`);
  const server = await Server.start(spec);
  try {
    let answered = server.probesAnswered;
    if (opts.warmup > 0) answered += (await load(server.url, opts.warmup, opts.connections)).requests.total;
    const workerPids = [...server.servingPids];
    const snap = () => ({
      primary: cpuSeconds(server.pid),
      workers: sum(workerPids.map(cpuSeconds)),
      own: ownCpuSeconds(),
      machine: machineCpuSeconds(),
    });
    const m = await withCommandStats(redis, async () => {
      const c0 = snap();
      const t0 = performance.now();
      const r = await load(server.url, opts.seconds, opts.connections);
      const wall = (performance.now() - t0) / 1000;
      return { r, wall, c0, c1: snap() };
    });
    const { r, wall, c0, c1 } = m.result;
    answered += r.requests.total;
    if (!server.alive) throw new Error(`${config.label}: the server exited during the measurement`);
    const pct = (s: number) => (100 * s) / wall;
    const counted = config.key === 'off' ? null : await countedRequests(server.metricsUrl, `part 2, ${config.label}, round ${round}`);
    return {
      key: config.key,
      round,
      rps: r.requests.total / r.duration,
      p50: r.latency.p50,
      p99: r.latency.p99,
      errors: r.errors + r.timeouts + r.non2xx,
      lost: workerPids.filter((pid) => !pidAlive(pid)).length,
      cpuPrimary: pct(c1.primary - c0.primary),
      cpuWorkers: pct(c1.workers - c0.workers),
      cpuRedis: pct(m.redisCpu),
      cpuLoadgen: pct(c1.own - c0.own),
      cpuMachine: pct(c1.machine - c0.machine),
      commandsPerSecond: totalCalls(m.stats) / m.seconds,
      check: config.key === 'off' ? '–' : checkCount(`part 2, ${config.label}, round ${round}`, counted, answered, 2 * opts.connections),
    };
  } finally {
    await server.stop();
    const dir = multiprocDirOf(spec);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

const QUIET_OTHER_CPU = 20;
const otherCpu = (s: P2Sample) => Math.max(0, s.cpuMachine - s.cpuPrimary - s.cpuWorkers - s.cpuRedis - s.cpuLoadgen);
const workerUsPerRequest = (s: P2Sample) => ((s.cpuWorkers / 100) * 1e6) / s.rps;

async function part2(opts: Options, redis: RedisServer): Promise<void> {
  const cores = os.cpus().length;
  out(
    `\n## Part 2: throughput, Redis mode vs directory mode vs --no-metrics (examples/plain.js, GET /, ${P12_WORKERS} async workers)\n\n` +
      `${opts.rounds} rounds x ${P2_CONFIGS.length} configurations x (${opts.warmup} s warm-up + ${opts.seconds} s measured), ` +
      `${opts.connections} keep-alive connections, order rotating from round to round, a fresh server per run\n\n`,
  );
  const samples: P2Sample[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    const order = P2_CONFIGS.map((_, i) => P2_CONFIGS[(i + round - 1) % P2_CONFIGS.length]!);
    for (const config of order) {
      const s = await p2Run(config, round, opts, redis);
      samples.push(s);
      out(
        `round ${round}/${opts.rounds}  ${config.label.padEnd(34)} ${fmt(s.rps).padStart(7)} req/s  p50 ${s.p50} ms p99 ${s.p99} ms  ` +
          `cpu% primary ${fmt(s.cpuPrimary)} workers ${fmt(s.cpuWorkers)} redis ${fmt(s.cpuRedis, 1)} loadgen ${fmt(s.cpuLoadgen)} other ${fmt(otherCpu(s))}  ` +
          `worker µs/req ${fmt(workerUsPerRequest(s), 1)}  redis cmds/s ${fmt(s.commandsPerSecond, 1)}  counter ${s.check}\n`,
      );
      if (s.errors > 0) fail(`part 2, ${config.label}, round ${round}: ${s.errors} errors/timeouts/non-2xx`);
      if (s.lost > 0) fail(`part 2, ${config.label}, round ${round}: ${s.lost} worker(s) lost`);
    }
  }
  const med: Record<string, number> = {};
  const rows = P2_CONFIGS.map((c) => {
    const mine = samples.filter((s) => s.key === c.key);
    const rps = mine.map((s) => s.rps);
    med[c.key] = median(rps);
    const m = (f: (s: P2Sample) => number) => median(mine.map(f));
    return [
      c.label,
      fmt(med[c.key]!),
      `${fmt(Math.min(...rps))}–${fmt(Math.max(...rps))}`,
      `${fmt(m((s) => s.p50))} / ${fmt(m((s) => s.p99))}`,
      fmt(m((s) => s.cpuPrimary)),
      fmt(m((s) => s.cpuWorkers)),
      fmt(m((s) => s.cpuRedis), 1),
      fmt(m(workerUsPerRequest), 1),
      fmt(m((s) => s.cpuLoadgen)),
      fmt(m(otherCpu)),
      c.key === 'redis' ? fmt(m((s) => s.commandsPerSecond), 1) : '–',
      String(sum(mine.map((s) => s.errors))),
      c.key === 'off' ? '–' : mine.every((s) => s.check === 'exact' || s.check.startsWith('ok')) ? 'ok' : 'MISMATCH',
    ];
  });
  out(
    `\nMedians over ${opts.rounds} rounds (CPU in % of one core during the measured seconds; ${cores} cores = ${cores * 100}%)\n\n` +
      table(
        ['configuration', 'req/s (median)', 'min–max', 'latency p50 / p99 ms', 'CPU primary', 'CPU workers', 'CPU redis-server', 'worker CPU µs/req', 'CPU loadgen', 'CPU other', 'Redis cmds/s', 'errors', 'counter vs client'],
        rows,
      ) +
      '\n' +
      'CPU other = the whole machine minus this server, redis-server and the load generator: other jobs on the shared machine.\n' +
      'worker CPU µs/req = CPU the workers used per request answered (less sensitive to the other jobs than req/s).\n',
  );
  // Rounds in which no run shared the machine with much other work (the machine is shared: see CPU other).
  const quiet = new Set<number>();
  for (let round = 1; round <= opts.rounds; round++) {
    if (samples.filter((s) => s.round === round).every((s) => otherCpu(s) < QUIET_OTHER_CPU)) quiet.add(round);
  }
  const perRound = (a: Mode, b: Mode, f: (s: P2Sample) => number = (s) => s.rps, onlyQuiet = false) => {
    const xs: number[] = [];
    for (let round = 1; round <= opts.rounds; round++) {
      if (onlyQuiet && !quiet.has(round)) continue;
      const x = samples.find((s) => s.key === a && s.round === round);
      const y = samples.find((s) => s.key === b && s.round === round);
      if (x && y) xs.push(f(x) / f(y));
    }
    return xs;
  };
  const pairs: [Mode, Mode][] = [
    ['redis', 'off'],
    ['directory', 'off'],
    ['redis', 'directory'],
  ];
  const label = (k: Mode) => P2_CONFIGS.find((c) => c.key === k)!.label.replace(`promfork -w ${P12_WORKERS}, `, '');
  out(
    `\nRatios\n\n${table(
      [
        'ratio',
        'req/s: of medians',
        'req/s: median of per-round ratios',
        'req/s: per-round min–max',
        'worker CPU µs/req: median of per-round ratios',
        `quiet rounds only (${quiet.size}): req/s, worker µs/req`,
      ],
      pairs.map(([a, b]) => {
        const xs = perRound(a, b);
        const q = perRound(a, b, undefined, true);
        return [
          `${label(a)} / ${label(b)}`,
          `${fmt(med[a]! / med[b]!, 3)}x`,
          `${fmt(median(xs), 3)}x`,
          `${fmt(Math.min(...xs), 3)}–${fmt(Math.max(...xs), 3)}`,
          `${fmt(median(perRound(a, b, workerUsPerRequest)), 3)}x`,
          q.length ? `${fmt(median(q), 3)}x, ${fmt(median(perRound(a, b, workerUsPerRequest, true)), 3)}x` : 'n/a',
        ];
      }),
    )}\n` +
      `quiet round: every run of the round had CPU other < ${QUIET_OTHER_CPU}% (rounds ${quiet.size ? [...quiet].join(', ') : 'none'})\n`,
  );
}

// =============================================================================================================
// Part 3: scrape latency, many servers in one Redis

/** Proportional set size (shared pages split among sharers) of `pid` in bytes, or RSS, or NaN. */
function memoryBytes(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // fall back to RSS
  }
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

function memAvailableBytes(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

const MB = 1024 * 1024;

interface Latency {
  target: string;
  ms: number[];
  bytes: number;
  series: number;
  appSeries: number;
  errors: number;
  commandsPerScrape: number;
  byCommand: string;
}

/** `n` sequential scrapes on one keep-alive connection (as Prometheus does), after a few not counted. */
async function scrapeSeries(
  target: string,
  url: string,
  n: number,
  redis: RedisServer,
  ownPrefix: string,
  before?: () => Promise<void>,
): Promise<Latency> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < WARMUP_SCRAPES; i++) {
      await before?.();
      await scrape(url, agent);
    }
    const ms: number[] = [];
    let last: Scrape | null = null;
    let errors = 0;
    const m = await withCommandStats(redis, async () => {
      for (let i = 0; i < n; i++) {
        await before?.(); // not timed
        const r = await scrape(url, agent);
        if (r.error !== null) {
          errors++;
          if (errors <= 3) fail(`part 3, ${target}: scrape ${i + 1}: ${r.error}`);
        } else {
          ms.push(r.ms);
          last = r;
        }
      }
    });
    const body = (last as Scrape | null)?.body ?? '';
    return {
      target,
      ms,
      bytes: (last as Scrape | null)?.bytes ?? 0,
      series: seriesCount(body),
      appSeries: seriesCount(body, ownPrefix),
      errors,
      commandsPerScrape: totalCalls(m.stats) / n,
      byCommand: [...m.stats]
        .sort((a, b) => b[1].calls - a[1].calls)
        .map(([c, v]) => `${c} ${fmt(v.calls / n, 2)}`)
        .join(', '),
    };
  } finally {
    agent.destroy();
  }
}

async function part3(opts: Options, redis: RedisServer): Promise<void> {
  const n = opts.instances;
  const w = opts.instanceWorkers;
  out(
    `\n## Part 3: scrape latency, ${n} servers x ${w} workers in one Redis (examples/plain.js, async)\n\n` +
      `Servers start one after another, each waited for until every worker has served a request (probes on fresh connections);\n` +
      `then ${opts.requests} more requests per server, the sidecar (promfork exporter --redis --all-instances), ` +
      `${WARMUP_SCRAPES} warm-up scrapes, then ${opts.scrapes} sequential GET /metrics on one keep-alive connection per target (no load, except in the last row).\n` +
      `Boot budget: ${opts.bootBudget} s (servers not started by then are skipped, and said so).\n\n`,
  );
  const leftover = Number(await redis.cli('DBSIZE'));
  out(`Keys left in Redis by parts 1-2 (every run clears its keys at graceful exit): ${leftover}\n`);
  if (leftover > 0) {
    await redis.cli('FLUSHALL');
    out('  (flushed, so that the sidecar serves only the servers of this part)\n');
  }

  const servers: Server[] = [];
  const sidecars: Sidecar[] = [];
  const requestsSent: number[] = [];
  try {
    const bootStart = performance.now();
    const bootTimes: number[] = [];
    for (let i = 0; i < n; i++) {
      const elapsed = (performance.now() - bootStart) / 1000;
      if (elapsed > opts.bootBudget) {
        out(`boot budget of ${opts.bootBudget} s spent after ${servers.length} servers: scaling down to ${servers.length} x ${w}\n`);
        break;
      }
      const avail = memAvailableBytes();
      if (avail < 1024 * MB) {
        out(`MemAvailable ${fmt(avail / MB)} MB < 1,024 MB after ${servers.length} servers: scaling down to ${servers.length} x ${w}\n`);
        break;
      }
      const t0 = performance.now();
      try {
        servers.push(await Server.start(promforkSpec(`pod-${i}`, 'redis', w, redis.port, `pod-${i}`, 90_000)));
      } catch (err) {
        fail(`part 3: pod-${i} did not boot: ${(err as Error).message}`);
        out(`pod-${i} did not boot: scaling down to ${servers.length} x ${w}\n`);
        break;
      }
      bootTimes.push((performance.now() - t0) / 1000);
      out(`  pod-${i}: ${w} workers serving after ${fmt(bootTimes.at(-1)!, 1)} s (${fmt((performance.now() - bootStart) / 1000, 1)} s in all)\n`);
    }
    if (servers.length === 0) throw new Error('part 3: no server booted');
    const totalWorkers = servers.length * w;
    const bootSeconds = (performance.now() - bootStart) / 1000;

    // A few more requests to each server, on fresh connections (spread over its workers), so every worker's
    // series exist and have moved; then wait until the sidecar sees every worker and every request.
    for (const s of servers) {
      let answered = s.probesAnswered;
      for (let i = 0; i < opts.requests; i++) if ((await probe(s.url)) !== null) answered++;
      requestsSent.push(answered);
    }
    const expected = sum(requestsSent);

    const sidecarArgv = (extra: string[]) => [
      CLI, 'exporter', '--redis', '--redis-host', '127.0.0.1', '--redis-port', String(redis.port),
      '--metrics-port', '0', '--metrics-bind', '127.0.0.1', '--log-level', 'info', ...extra,
    ];
    const all = await Sidecar.start('sidecar --all-instances', sidecarArgv(['--all-instances']));
    sidecars.push(all);
    const readyDeadline = performance.now() + 30_000;
    let lastState = '';
    for (;;) {
      const r = await scrape(all.metricsUrl, false);
      if (r.error === null) {
        const ages = sampleValues(r.body, 'promfork_exporter_snapshot_age_seconds').length;
        const counted = sum(sampleValues(r.body, REQUEST_COUNTER));
        const serversSeen = new Set([...r.body.matchAll(/server="([^"]+)"/g)].map((m) => m[1]!)).size;
        lastState = `${ages} worker snapshots, ${serversSeen} servers, request counter ${counted}/${expected}`;
        // docs/design.md, L6: never fewer than answered; a readiness probe that timed out may still have been counted.
        if (ages === totalWorkers && serversSeen === servers.length && counted >= expected) break;
      } else {
        lastState = r.error;
      }
      if (performance.now() > readyDeadline) {
        fail(`part 3: the sidecar did not show every worker and request within 30 s (want ${totalWorkers} worker snapshots, ${servers.length} servers, ${expected} requests; last: ${lastState})`);
        break;
      }
      await sleep(500);
    }
    out(`\nready: ${lastState}\n`);

    const mem = servers.map((s) => sum([s.pid, ...s.servingPids].map(memoryBytes)));
    const redisMem = memoryBytes(redis.pid);
    const keys = Number(await redis.cli('DBSIZE'));
    out(
      `booted ${servers.length} servers x ${w} workers = ${totalWorkers} workers (+ ${servers.length} primaries) in ${fmt(bootSeconds, 1)} s ` +
        `(per server: median ${fmt(median(bootTimes), 1)} s, max ${fmt(Math.max(...bootTimes), 1)} s); ` +
        `memory (PSS) of all servers ${fmt(sum(mem) / MB)} MB (${fmt(sum(mem) / MB / (totalWorkers + servers.length), 1)} MB per process), ` +
        `redis-server ${fmt(redisMem / MB, 1)} MB with ${keys} keys; MemAvailable now ${fmt(memAvailableBytes() / MB)} MB\n\n`,
    );

    const results: Latency[] = [];
    results.push(await scrapeSeries(`sidecar --all-instances (${servers.length} x ${w})`, all.metricsUrl, opts.scrapes, redis, 'promfork_exporter_'));
    await all.stop();
    const one = await Sidecar.start('sidecar pod-0', sidecarArgv(['--metrics-instance', 'pod-0']));
    sidecars.push(one);
    // Its first scrape connects to Redis; the warm-up scrapes of scrapeSeries absorb that.
    results.push(await scrapeSeries(`sidecar --metrics-instance pod-0 (1 x ${w})`, one.metricsUrl, opts.scrapes, redis, 'promfork_exporter_'));
    await one.stop();
    const pod0 = servers[0]!;
    results.push(await scrapeSeries(`pod-0's primary, its own /metrics (1 x ${w})`, pod0.metricsUrl, opts.scrapes, redis, 'promfork_'));
    // Idle workers skip their writes and the primary skips reading unchanged snapshots: the row above is the
    // cheap case. Here ${w} requests on fresh connections (not timed) before each scrape change most workers'
    // snapshots, so the scrape waits for their flushes and reads them from Redis.
    let extra = 0;
    results.push(
      await scrapeSeries(`pod-0's primary, ${w} requests before each scrape`, pod0.metricsUrl, opts.scrapes, redis, 'promfork_', async () => {
        for (let i = 0; i < w; i++) if ((await probe(pod0.url)) !== null) extra++;
      }),
    );
    requestsSent[0]! += extra;
    const pod0Check = checkCount(`part 3, pod-0`, await countedRequests(pod0.metricsUrl, 'part 3, pod-0'), requestsSent[0]!, 50);

    out(
      table(
        ['target', 'scrapes', 'p50 ms', 'p99 ms', 'max ms', 'series', 'series without own health metrics', 'body KB', 'Redis commands / scrape', 'errors'],
        results.map((r) => [
          r.target,
          String(r.ms.length),
          fmt(percentile(r.ms, 50), 1),
          fmt(percentile(r.ms, 99), 1),
          fmt(Math.max(...r.ms), 1),
          fmt(r.series),
          fmt(r.appSeries),
          fmt(r.bytes / 1024, 1),
          fmt(r.commandsPerScrape, 2),
          String(r.errors),
        ]),
      ) +
        '\n\nRedis commands per scrape, by command (everything Redis executed during the scrapes, the servers\' own ' +
        'background flushes and TTL heartbeats included)\n\n' +
        table(
          ['target', 'commands / scrape'],
          results.map((r) => [r.target, r.byCommand]),
        ) +
        '\n' +
        '(series without own health metrics: the sidecar\'s promfork_exporter_* and, for the primary, promfork_* left out)\n' +
        `pod-0's request counter vs requests answered: ${pod0Check}\n`,
    );
    const lost = servers.reduce((a, s) => a + [...s.servingPids].filter((pid) => !pidAlive(pid)).length, 0);
    if (lost > 0) fail(`part 3: ${lost} worker(s) lost`);
  } finally {
    for (const s of sidecars) await s.stop();
    const t0 = performance.now();
    await Promise.all(servers.map((s) => s.stop(20_000)));
    if (servers.length > 0) out(`stopped ${servers.length} servers in ${fmt((performance.now() - t0) / 1000, 1)} s\n`);
  }
}

// =============================================================================================================
// Part 4: one server vs Redis Cluster vs Redis Sentinel

interface Topology {
  label: string;
  /** REDIS_URL. */
  url: string;
  /** The nodes clients write to (the masters), and the others (replicas, sentinels) counted apart. */
  masters: RedisServer[];
  others: { label: string; nodes: RedisServer[] }[];
  stop(): Promise<void>;
}

/** Commands each node executed while `body` ran, INFO left out (nobody else sends INFO to these nodes). */
async function nodeStats<T>(nodes: RedisServer[], body: () => Promise<T>): Promise<{ result: T; perNode: CommandStats[] }> {
  const before = await Promise.all(nodes.map((n) => n.commandStats()));
  const result = await body();
  const after = await Promise.all(nodes.map((n) => n.commandStats()));
  const perNode = nodes.map((_, i) => {
    const d = statsDelta(before[i]!, after[i]!, 0);
    d.delete('info');
    return d;
  });
  return { result, perNode };
}

function mergeStats(list: CommandStats[]): CommandStats {
  const m: CommandStats = new Map();
  for (const s of list) for (const [cmd, v] of s) {
    const cur = m.get(cmd) ?? { calls: 0, usec: 0 };
    m.set(cmd, { calls: cur.calls + v.calls, usec: cur.usec + v.usec });
  }
  return m;
}

const statsText = (s: CommandStats) =>
  [...s].sort(([a], [b]) => (a < b ? -1 : 1)).map(([cmd, v]) => `${cmd} ${fmt(v.calls)}`).join(', ') || 'none';

async function startTopology(kind: 'single' | 'cluster' | 'sentinel'): Promise<Topology> {
  if (kind === 'single') {
    const r = await startRedisServer({ binary: REDIS_SERVER });
    return { label: 'one redis-server', url: r.url, masters: [r], others: [], stop: () => r.stop() };
  }
  if (kind === 'cluster') {
    const c = await startRedisCluster({ masters: 3 });
    return { label: 'Redis Cluster, 3 masters', url: c.url, masters: c.nodes, others: [], stop: () => c.stop() };
  }
  const s = await startRedisSentinel({ replicas: 1, sentinels: 3 });
  return {
    label: 'Sentinel: master + replica, 3 sentinels',
    url: s.url,
    masters: [s.master],
    others: [
      { label: 'replica', nodes: s.replicas },
      { label: 'sentinels', nodes: s.sentinels },
    ],
    stop: () => s.stop(),
  };
}

async function part4(opts: Options): Promise<void> {
  const scrapes = Math.min(opts.scrapes, 50);
  out(
    `\n## Part 4: Redis topologies (examples/plain.js, ${P12_WORKERS} async workers, paced ~${fmt(opts.rate)} req/s for ${opts.topologySeconds} s, ` +
      `then ${scrapes} scrapes of the primary and ${scrapes} of the sidecar)\n\n` +
      'Commands: INFO commandstats deltas on every data node (masters; replicas and sentinels apart). A flush is one SET\n' +
      '(a worker\'s snapshot every second while it changes, the primary\'s every 5 s), sent in one pipeline with its SADD and PEXPIRE.\n\n',
  );
  const rows: string[][] = [];
  const details: string[] = [];
  for (const kind of ['single', 'cluster', 'sentinel'] as const) {
    const topo = await startTopology(kind);
    let server: Server | null = null;
    let sidecar: Sidecar | null = null;
    try {
      const instance = `bench-topology-${kind}`;
      const argv = [CLI, PLAIN_APP, '-w', String(P12_WORKERS), '-k', 'async', '-b', '127.0.0.1:0', '--log-level', 'info',
        '--metrics-port', '0', '--metrics-bind', '127.0.0.1', '--redis', '--metrics-instance', instance];
      server = await Server.start({ label: `promfork on ${topo.label}`, argv, workers: P12_WORKERS, metrics: true, env: { REDIS_URL: topo.url } });
      sidecar = await Sidecar.start(`sidecar on ${topo.label}`, [CLI, 'exporter', '--redis', '--redis-url', topo.url, '--metrics-instance', instance,
        '--metrics-port', '0', '--metrics-bind', '127.0.0.1', '--log-level', 'info']);
      await sleep(2000); // past the start: connections, first snapshots
      const all = [...topo.masters, ...topo.others.flatMap((o) => o.nodes)];
      const window = await nodeStats(all, () => paced(server!.url, opts.topologySeconds, opts.connections, opts.rate));
      const r = window.result;
      const errors = r.errors + r.timeouts + r.non2xx;
      if (errors > 0) fail(`part 4, ${topo.label}: ${errors} errors/timeouts/non-2xx`);
      const masterStats = window.perNode.slice(0, topo.masters.length);
      const onMasters = mergeStats(masterStats);
      const touched = masterStats.filter((st) => totalCalls(st) > 0).length;
      const flushes = onMasters.get('set')?.calls ?? 0;
      const primaryScrapes = await nodeStats(topo.masters, async () => {
        for (let i = 0; i < scrapes; i++) if ((await scrape(server!.metricsUrl, false)).error !== null) fail(`part 4, ${topo.label}: a primary scrape failed`);
      });
      const sidecarScrapes = await nodeStats(topo.masters, async () => {
        for (let i = 0; i < scrapes; i++) if ((await scrape(sidecar!.metricsUrl, false)).error !== null) fail(`part 4, ${topo.label}: a sidecar scrape failed`);
      });
      const answered = server.probesAnswered + r.requests.total;
      const check = checkCount(`part 4, ${topo.label}`, await countedRequests(server.metricsUrl, `part 4, ${topo.label}`), answered, 2 * opts.connections);
      const sidecarCount = await countedRequests(sidecar.metricsUrl, `part 4, ${topo.label} sidecar`);
      const primaryAll = mergeStats(primaryScrapes.perNode);
      const sidecarAll = mergeStats(sidecarScrapes.perNode);
      rows.push([
        topo.label,
        fmt(r.requests.total / r.duration),
        fmt(totalCalls(onMasters) / r.duration, 2),
        fmt(flushes),
        flushes > 0 ? fmt(totalCalls(onMasters) / flushes, 2) : '–',
        flushes > 0 ? fmt(totalUsec(onMasters) / flushes, 1) : '–',
        `${touched} of ${topo.masters.length}`,
        fmt(totalCalls(primaryAll) / scrapes, 2),
        fmt(totalCalls(sidecarAll) / scrapes, 2),
        check,
      ]);
      let offset = topo.masters.length;
      const othersText = topo.others.map((o) => {
        const text = `; ${o.label}: ${statsText(mergeStats(window.perNode.slice(offset, offset + o.nodes.length)))}`;
        offset += o.nodes.length;
        return text;
      });
      details.push(
        `- ${topo.label}: window on the masters: ${statsText(onMasters)}${othersText.join('')}` +
          `\n  per ${scrapes} primary scrapes: ${statsText(primaryAll)}; per ${scrapes} sidecar scrapes: ${statsText(sidecarAll)}; sidecar counted ${sidecarCount ?? 'n/a'}`,
      );
    } finally {
      await sidecar?.stop();
      await server?.stop();
      await topo.stop();
    }
  }
  out(
    table(
      ['topology', 'req/s', 'commands/s on masters', 'flushes (SET)', 'commands / flush', 'Redis µs / flush', 'masters the run touched', 'commands / primary scrape', 'commands / sidecar scrape', 'request counter'],
      rows,
    ) + '\n\n' + details.join('\n') + '\n',
  );
}

// =============================================================================================================

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  requireBuild();
  const started = performance.now();
  out(
    [
      '# promfork Redis benchmark',
      machineLine(),
      `dist/cli.js built ${distMtime()}; servers log at --log-level info`,
      `note: the load generator (autocannon) and redis-server share the ${os.cpus().length} cores with the servers.`,
      '',
    ].join('\n'),
  );
  const redis = await startRedisServer({ binary: REDIS_SERVER });
  try {
    const version = /redis_version:(\S+)/.exec(String(await redis.cli('INFO', 'server')))?.[1] ?? 'unknown';
    out(`redis-server ${version} on 127.0.0.1:${redis.port} (pid ${redis.pid}, --save '' --appendonly no)\n`);
    if (opts.parts.has(1)) await part1(opts, redis);
    if (opts.parts.has(2)) await part2(opts, redis);
    if (opts.parts.has(3)) await part3(opts, redis);
    if (opts.parts.has(4)) await part4(opts);
  } finally {
    await redis.stop();
  }
  out(`\ntotal time: ${fmt((performance.now() - started) / 1000)} s\n`);
  reportEnd(failures, null);
}

runBench(main);
