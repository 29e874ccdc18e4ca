// Worker classes on a CPU-bound and an I/O-bound handler: requests/s, latency and CPU of promfork's sync,
// async and thread workers on bench/apps/cpu-io.js (`/cpu`: ~3 ms of computation; `/io?ms=20`: a 20 ms wait
// that uses no CPU, as a database call). A benchmark, not a test: it prints figures and fails only if a
// request failed or a worker was lost.
//
//   npm run build && node --import tsx bench/workers-cpu-io.ts [--seconds N] [--rounds N] [--connections N]
//
// One alternating run: every round measures every (configuration, workload) pair once, in an order rotated
// from round to round, so that a noisy neighbour on the shared machine hits all of them alike. Each
// measurement gets a freshly started server (ready once every worker has answered a probe), a warm-up on the
// same route, then `--seconds` of keep-alive load from autocannon, and the server is stopped by pid (SIGTERM,
// SIGKILL after a deadline) before the next one. Medians are over rounds.
// The load generator runs inside this process, on the same cores as the server.

import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import {
  CLI,
  ROOT,
  Server,
  cpuSeconds,
  distMtime,
  fmt,
  machineCpuSeconds,
  machineLine,
  median,
  ownCpuSeconds,
  pidAlive,
  positiveInt as positiveIntOr,
  requireBuild,
  table,
  type ServerSpec,
  parseOrExit,
  runBench,
} from './lib.js';

const APP = path.join(ROOT, 'bench', 'apps', 'cpu-io.js');

const USAGE = `usage: node --import tsx bench/workers-cpu-io.ts [options]

  --seconds N      measured seconds per run (default 5)
  --rounds N       rounds; each round runs every configuration on both workloads once (default 3)
  --connections N  concurrent client connections (default 32)
  --warmup N       warm-up seconds before each measured run, not counted (default 1)
  --io-ms N        the I/O-bound handler's wait in ms (default 20)
  -h, --help       this text

Needs a build: npm run build (the servers run dist/cli.js).
`;

interface Options {
  seconds: number;
  rounds: number;
  connections: number;
  warmup: number;
  ioMs: number;
}

const positiveInt = (name: string, raw: string, min: number) => positiveIntOr(name, raw, min, USAGE);

function parseOptions(argv: string[]): Options {
  const v = parseOrExit(USAGE, () =>
    parseArgs({
      args: argv,
      options: {
        seconds: { type: 'string', default: '5' },
        rounds: { type: 'string', default: '3' },
        connections: { type: 'string', default: '32' },
        warmup: { type: 'string', default: '1' },
        'io-ms': { type: 'string', default: '20' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values,
  );
  return {
    seconds: positiveInt('seconds', v.seconds, 1),
    rounds: positiveInt('rounds', v.rounds, 1),
    connections: positiveInt('connections', v.connections, 1),
    warmup: positiveInt('warmup', v.warmup, 0),
    ioMs: positiveInt('io-ms', v['io-ms'], 1),
  };
}

// ---- configurations and workloads ----

interface Config extends ServerSpec {
  key: string;
  /** Every response is `Connection: close` (sync). */
  close: boolean;
}

function config(key: string, args: string[], workers: number): Config {
  return {
    key,
    label: `promfork ${args.join(' ')}`,
    // Metrics on (the default classes: PrometheusWorker, ...), as users run them; logging at info.
    argv: [CLI, APP, '-b', '127.0.0.1:0', '--log-level', 'info', '--metrics-port', '0', '--metrics-bind', '127.0.0.1', ...args],
    workers,
    metrics: true,
    close: args.includes('sync'),
  };
}

const CONFIGS: Config[] = [
  config('sync-2', ['-k', 'sync', '-w', '2'], 2),
  config('async-1', ['-k', 'async', '-w', '1'], 1),
  config('async-2', ['-k', 'async', '-w', '2'], 2),
  config('thread-1x2', ['-k', 'thread', '-w', '1', '--threads', '2'], 1),
  config('thread-2x2', ['-k', 'thread', '-w', '2', '--threads', '2'], 2),
];

interface Workload {
  key: 'cpu' | 'io';
  path: string;
}

const workloads = (opts: Options): Workload[] => [
  { key: 'cpu', path: '/cpu' },
  { key: 'io', path: `/io?ms=${opts.ioMs}` },
];

// ---- measuring ----

interface Sample {
  config: string;
  workload: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  lost: number;
  /** CPU during the measured seconds, in % of one core: the primary, the worker processes (all threads). */
  cpuPrimary: number;
  cpuWorkers: number;
  cpuLoadgen: number;
  cpuMachine: number;
}

function run(url: string, seconds: number, connections: number): Promise<autocannon.Result> {
  return autocannon({ url, connections, duration: seconds, pipelining: 1 });
}

async function runOnce(c: Config, w: Workload, opts: Options): Promise<Sample> {
  const server = await Server.start(c);
  try {
    const url = `${server.url}${w.path}`;
    if (opts.warmup > 0) await run(url, opts.warmup, opts.connections);
    const workerPids = [...server.servingPids];
    const snap = () => ({
      primary: cpuSeconds(server.pid),
      workers: workerPids.map(cpuSeconds),
      own: ownCpuSeconds(),
      machine: machineCpuSeconds(),
    });
    const cpu0 = snap();
    const t0 = performance.now();
    const r = await run(url, opts.seconds, opts.connections);
    const wall = (performance.now() - t0) / 1000;
    const cpu1 = snap();
    if (!server.alive) throw new Error(`${c.label}: the server exited during the measurement`);
    const pct = (s: number) => (100 * s) / wall;
    return {
      config: c.key,
      workload: w.key,
      rps: r.requests.total / r.duration,
      p50: r.latency.p50,
      p99: r.latency.p99,
      errors: r.errors + r.timeouts,
      non2xx: r.non2xx + r.mismatches,
      lost: workerPids.filter((pid) => !pidAlive(pid)).length,
      cpuPrimary: pct(cpu1.primary - cpu0.primary),
      cpuWorkers: pct(cpu1.workers.reduce((sum, v, i) => sum + v - cpu0.workers[i]!, 0)),
      cpuLoadgen: pct(cpu1.own - cpu0.own),
      cpuMachine: pct(cpu1.machine - cpu0.machine),
    };
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  requireBuild();
  const loads = workloads(opts);
  const pairs = CONFIGS.flatMap((c) => loads.map((w) => ({ c, w })));
  const cpus = os.cpus();
  process.stdout.write(
    [
      `promfork worker classes on a CPU-bound and an I/O-bound handler: bench/apps/cpu-io.js`,
      `  cpu: GET /cpu (a fixed computation, ~3 ms of one core); io: GET /io?ms=${opts.ioMs} (waits ${opts.ioMs} ms, no CPU)`,
      `${opts.rounds} rounds x ${pairs.length} runs x (${opts.warmup} s warm-up + ${opts.seconds} s measured), ${opts.connections} connections, pipelining 1`,
      machineLine(),
      `dist/cli.js built ${distMtime()}; metrics on (Prometheus worker classes), --log-level info`,
      `note: the load generator (autocannon) runs in this process and shares the ${cpus.length} cores with the server.`,
      `note: sync workers answer \`Connection: close\` (a new connection per request; latency n/a there).`,
      `expected duration: about ${Math.ceil((opts.rounds * pairs.length * (opts.warmup + opts.seconds + 1.5)) / 5) * 5} s`,
      '',
    ].join('\n'),
  );

  const samples: Sample[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    const order = pairs.map((_, i) => pairs[(i + (round - 1) * 3) % pairs.length]!);
    for (const { c, w } of order) {
      const s = await runOnce(c, w, opts);
      samples.push(s);
      const latency = c.close ? 'latency n/a' : `p50 ${s.p50} ms p99 ${s.p99} ms`;
      process.stdout.write(
        `round ${round}/${opts.rounds}  ${w.key.padEnd(3)}  ${c.label.padEnd(42)} ${fmt(s.rps).padStart(7)} req/s  ${latency.padEnd(24)}` +
          `cpu% primary ${fmt(s.cpuPrimary)} workers ${fmt(s.cpuWorkers)} loadgen ${fmt(s.cpuLoadgen)} machine ${fmt(s.cpuMachine)}` +
          `${s.errors + s.non2xx ? `  ERRORS ${s.errors} non2xx ${s.non2xx}` : ''}${s.lost ? `  WORKERS LOST ${s.lost}` : ''}\n`,
      );
    }
  }

  const med = new Map<string, number>();
  for (const w of loads) {
    const rows = CONFIGS.map((c) => {
      const mine = samples.filter((s) => s.config === c.key && s.workload === w.key);
      const rps = mine.map((s) => s.rps);
      med.set(`${c.key}/${w.key}`, median(rps));
      const perReqMs = median(mine.map((s) => ((s.cpuWorkers + s.cpuPrimary) / 100 / s.rps) * 1000));
      return [
        c.label,
        fmt(median(rps)),
        `${fmt(Math.min(...rps))}–${fmt(Math.max(...rps))}`,
        c.close ? 'n/a' : `${fmt(median(mine.map((s) => s.p50)))} / ${fmt(median(mine.map((s) => s.p99)))}`,
        fmt(median(mine.map((s) => s.cpuPrimary))),
        fmt(median(mine.map((s) => s.cpuWorkers))),
        fmt(perReqMs, 3),
        fmt(median(mine.map((s) => s.cpuLoadgen))),
        fmt(median(mine.map((s) => s.cpuMachine))),
        String(mine.reduce((a, s) => a + s.errors + s.non2xx + s.lost, 0)),
      ];
    });
    process.stdout.write(
      `\n${w.key === 'cpu' ? 'CPU-bound: GET /cpu' : `I/O-bound: GET /io?ms=${opts.ioMs}`} — medians over ${opts.rounds} rounds ` +
        `(CPU in % of one core; ${cpus.length} cores = ${cpus.length * 100}%)\n\n` +
        table(
          ['configuration', 'req/s', 'min–max', 'p50 / p99 ms', 'CPU primary', 'CPU workers', 'server CPU ms/req', 'CPU loadgen', 'CPU machine', 'errors+lost'],
          rows,
        ) +
        '\n',
    );
  }
  const ratio = (a: string, b: string) => `${fmt(med.get(a)! / med.get(b)!, 2)}x`;
  process.stdout.write(
    `\nRatios of medians\n\n${table(
      ['ratio', 'cpu', 'io'],
      [
        ['thread -w 1 --threads 2 / async -w 1', ratio('thread-1x2/cpu', 'async-1/cpu'), ratio('thread-1x2/io', 'async-1/io')],
        ['thread -w 1 --threads 2 / async -w 2', ratio('thread-1x2/cpu', 'async-2/cpu'), ratio('thread-1x2/io', 'async-2/io')],
        ['thread -w 2 --threads 2 / async -w 2', ratio('thread-2x2/cpu', 'async-2/cpu'), ratio('thread-2x2/io', 'async-2/io')],
        ['async -w 2 / sync -w 2', ratio('async-2/cpu', 'sync-2/cpu'), ratio('async-2/io', 'sync-2/io')],
        ['thread -w 1 --threads 2 / sync -w 2', ratio('thread-1x2/cpu', 'sync-2/cpu'), ratio('thread-1x2/io', 'sync-2/io')],
      ],
    )}\n`,
  );

  const failed = samples.filter((s) => s.errors + s.non2xx + s.lost > 0);
  if (failed.length > 0) {
    process.stderr.write(`\nbench: FAILED: ${failed.length} run(s) had errors, non-2xx responses or lost workers (must be 0)\n`);
    process.exitCode = 1;
  }
}

runBench(main);
