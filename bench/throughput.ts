// Throughput by worker class: requests/s of examples/plain.js (route `/`) served by promfork with
// 2 sync workers, 2 async workers, and, as the reference, by a bare single-process node:http server.
// A benchmark, not a test: it prints figures and fails only if a request failed.
//
//   npm run build && node --import tsx bench/throughput.ts [--seconds N] [--rounds N] [--connections N]
//
// Configurations alternate within each round (the order rotates from round to round) so that a
// noisy neighbour on the shared machine hits every configuration alike; each measurement gets a
// freshly started server (ready once every worker has answered a probe), a short warm-up, then
// `--seconds` of load, and the server is stopped by pid (SIGTERM, SIGKILL after a deadline) before
// the next one starts. Medians are over rounds.
// The load generator (autocannon) runs inside this process, on the same cores as the server.
// Servers, probes, load, CPU accounting and tables come from bench/lib.ts (shared with bench/exporter.ts).

import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  CLI,
  PLAIN_APP,
  ROOT,
  Server,
  cpuSeconds,
  distMtime,
  fmt,
  load,
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

const APP = PLAIN_APP;
const BARE = path.join(ROOT, 'bench', 'bare-server.js');
const WORKERS = 2;

// ---- options ----

const USAGE = `usage: node --import tsx bench/throughput.ts [options]

  --seconds N      measured seconds per run (default 5)
  --rounds N       rounds; each round runs every configuration once (default 5)
  --connections N  concurrent client connections (default 10)
  --warmup N       warm-up seconds before each measured run, not counted (default 1)
  --bare-close     add a 4th configuration: bare node:http answering \`Connection: close\`
                   (separates the reconnect cost from the cost of promfork's primary)
  -h, --help       this text

Needs a build: npm run build (the servers run dist/cli.js).
`;

interface Options {
  seconds: number;
  rounds: number;
  connections: number;
  warmup: number;
  bareClose: boolean;
}

const positiveInt = (name: string, raw: string, min: number) => positiveIntOr(name, raw, min, USAGE);

function parseOptions(argv: string[]): Options {
  const v = parseOrExit(USAGE, () =>
    parseArgs({
      args: argv,
      options: {
        seconds: { type: 'string', default: '5' },
        rounds: { type: 'string', default: '5' },
        connections: { type: 'string', default: '10' },
        warmup: { type: 'string', default: '1' },
        'bare-close': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values,
  );
  return {
    seconds: positiveInt('seconds', v.seconds, 1),
    rounds: positiveInt('rounds', v.rounds, 1),
    connections: positiveInt('connections', v.connections, 1),
    warmup: positiveInt('warmup', v.warmup, 0),
    bareClose: v['bare-close'],
  };
}

// ---- configurations ----

interface Config extends ServerSpec {
  key: string;
  /** Every response is `Connection: close`. */
  close: boolean;
}

function promforkConfig(kind: 'sync' | 'async'): Config {
  return {
    key: kind,
    label: `promfork -k ${kind} -w ${WORKERS}`,
    argv: [CLI, APP, '-w', String(WORKERS), '-b', '127.0.0.1:0', '-k', kind, '--log-level', 'info'],
    workers: WORKERS,
    close: kind === 'sync',
  };
}

function configs(opts: Options): Config[] {
  const list = [
    promforkConfig('sync'),
    promforkConfig('async'),
    { key: 'bare', label: 'bare node:http, 1 process', argv: [BARE], workers: 0, close: false },
  ];
  if (opts.bareClose) {
    list.push({ key: 'bare-close', label: 'bare node:http, Connection: close', argv: [BARE, '--close'], workers: 0, close: true });
  }
  return list;
}

// ---- measuring ----

interface Sample {
  config: string;
  round: number;
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  mismatches: number;
  /** Whether responses carry `Connection: close` (autocannon's latency is meaningless then). */
  close: boolean;
  /** Workers that served before the run and are gone after it (crashed, timed out, recycled). */
  lost: number;
  /** CPU used during the measured seconds, in % of one core. */
  cpuPrimary: number;
  cpuWorkers: number;
  cpuLoadgen: number;
  /** Every process on the machine, this benchmark and the server included. */
  cpuMachine: number;
}

async function runOnce(config: Config, round: number, opts: Options): Promise<Sample> {
  const server = await Server.start(config);
  try {
    if (opts.warmup > 0) await load(server.url, opts.warmup, opts.connections);
    // Promfork: the primary is the server pid and the workers are its children; bare: one process.
    const workerPids = config.workers > 0 ? [...server.servingPids] : [];
    const cpu0 = { primary: cpuSeconds(server.pid), workers: workerPids.map(cpuSeconds), own: ownCpuSeconds(), machine: machineCpuSeconds() };
    const t0 = performance.now();
    const r = await load(server.url, opts.seconds, opts.connections);
    const wall = (performance.now() - t0) / 1000;
    const cpu1 = { primary: cpuSeconds(server.pid), workers: workerPids.map(cpuSeconds), own: ownCpuSeconds(), machine: machineCpuSeconds() };
    const pct = (s: number) => (100 * s) / wall;
    if (!server.alive) throw new Error(`${config.label}: the server exited during the measurement`);
    const workersCpu = cpu1.workers.reduce((sum, v, i) => sum + v - cpu0.workers[i]!, 0);
    return {
      config: config.key,
      round,
      rps: r.requests.total / r.duration,
      p50: r.latency.p50,
      p99: r.latency.p99,
      requests: r.requests.total,
      errors: r.errors,
      timeouts: r.timeouts,
      non2xx: r.non2xx,
      mismatches: r.mismatches,
      close: config.close,
      lost: workerPids.filter((pid) => !pidAlive(pid)).length,
      cpuPrimary: pct(cpu1.primary - cpu0.primary),
      cpuWorkers: pct(workersCpu),
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
  const list = configs(opts);
  const perRun = opts.warmup + opts.seconds;
  const cpus = os.cpus();
  process.stdout.write(
    [
      `promfork throughput by worker class: examples/plain.js, GET /, ${WORKERS} workers`,
      `${opts.rounds} rounds x ${list.length} configurations x (${opts.warmup} s warm-up + ${opts.seconds} s measured), ${opts.connections} connections, pipelining 1`,
      machineLine(),
      `dist/cli.js built ${distMtime()}; servers log at --log-level info (at debug, workers log every request)`,
      `note: the load generator (autocannon) runs in this process and shares the ${cpus.length} cores with the server.`,
      `note: sync workers answer every request with \`Connection: close\`, so autocannon opens a new connection per request there`,
      `      (expected; it also writes one extra, unanswered request on each closing connection, see (*) below);`,
      `      async workers and the bare server keep connections alive.`,
      `expected duration: about ${Math.ceil((opts.rounds * list.length * (perRun + 1)) / 5) * 5} s`,
      '',
    ].join('\n'),
  );

  const samples: Sample[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    // Rotate the order so that no configuration always runs first (or right after another one).
    const order = list.map((_, i) => list[(i + round - 1) % list.length]!);
    for (const config of order) {
      const s = await runOnce(config, round, opts);
      samples.push(s);
      const bad = s.errors + s.timeouts + s.non2xx + s.mismatches;
      const latency = s.close ? 'latency n/a' : `p50 ${s.p50} ms p99 ${s.p99} ms`;
      const serverCpu = config.workers ? `primary ${fmt(s.cpuPrimary)} workers ${fmt(s.cpuWorkers)}` : `server ${fmt(s.cpuPrimary)}`;
      process.stdout.write(
        `round ${round}/${opts.rounds}  ${config.label.padEnd(34)} ${fmt(s.rps).padStart(7)} req/s  ${latency.padEnd(22)}` +
          `cpu% ${serverCpu}, loadgen ${fmt(s.cpuLoadgen)}, machine ${fmt(s.cpuMachine)}` +
          `${bad ? `  ERRORS ${s.errors} non2xx ${s.non2xx} mismatches ${s.mismatches}` : ''}` +
          `${s.lost ? `  WORKERS LOST ${s.lost}` : ''}\n`,
      );
    }
  }

  const med: Record<string, number> = {};
  const rows = list.map((c) => {
    const mine = samples.filter((s) => s.config === c.key);
    const rps = mine.map((s) => s.rps);
    med[c.key] = median(rps);
    const sum = (f: (s: Sample) => number) => mine.reduce((a, s) => a + f(s), 0);
    const isBare = c.workers === 0;
    return [
      c.label,
      fmt(med[c.key]!),
      `${fmt(Math.min(...rps))}–${fmt(Math.max(...rps))}`,
      c.close ? 'n/a (*)' : `${fmt(median(mine.map((s) => s.p50)))} / ${fmt(median(mine.map((s) => s.p99)))}`,
      isBare ? '–' : fmt(median(mine.map((s) => s.cpuPrimary))),
      isBare ? fmt(median(mine.map((s) => s.cpuPrimary))) : fmt(median(mine.map((s) => s.cpuWorkers))),
      fmt(median(mine.map((s) => s.cpuLoadgen))),
      fmt(median(mine.map((s) => s.cpuMachine))),
      String(sum((s) => s.errors + s.timeouts)),
      String(sum((s) => s.non2xx + s.mismatches)),
      c.workers > 0 ? String(sum((s) => s.lost)) : '–',
    ];
  });
  process.stdout.write(
    `\nMedians over ${opts.rounds} rounds (CPU in % of one core during the measured seconds; ${cpus.length} cores = ${cpus.length * 100}%)\n\n` +
      table(
        ['configuration', 'req/s (median)', 'min–max', 'latency p50 / p99 ms', 'CPU primary', 'CPU worker(s)', 'CPU loadgen', 'CPU machine', 'errors', 'non-2xx', 'workers lost'],
        rows,
      ) +
      '\n\n' +
      '(*) With `Connection: close` autocannon writes its next request onto the closing connection (never answered,\n' +
      '    never counted) and charges the wait to a later response, so its latency figures are meaningless there;\n' +
      '    requests/s counts complete responses and is right. Mean time per request and connection = connections / (req/s).\n' +
      `CPU machine = every process on the machine (out of ${cpus.length * 100}%); machine minus (server + loadgen) is other load\n` +
      '    (the machine is shared).\n\n',
  );

  const ratios: [string, string][] = [
    ['async', 'bare'],
    ['sync', 'bare'],
    ['async', 'sync'],
  ];
  if (opts.bareClose) ratios.push(['sync', 'bare-close'], ['bare-close', 'bare']);
  const label = (k: string) => list.find((c) => c.key === k)!.label;
  process.stdout.write(
    `Ratios of medians\n\n${table(
      ['ratio', 'value'],
      ratios.map(([a, b]) => [`${label(a)} / ${label(b)}`, `${fmt(med[a]! / med[b]!, 2)}x`]),
    )}\n`,
  );

  const failed = samples.filter((s) => s.errors + s.timeouts + s.non2xx + s.mismatches + s.lost > 0);
  if (failed.length > 0) {
    process.stderr.write(`\nbench: FAILED: ${failed.length} run(s) had errors, non-2xx responses or lost workers (must be 0)\n`);
    process.exitCode = 1;
  }
}

runBench(main);
