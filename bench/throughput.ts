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

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const APP = path.join(ROOT, 'examples', 'plain.js');
const BARE = path.join(ROOT, 'bench', 'bare-server.js');
const WORKERS = 2;
const BOOT_TIMEOUT_MS = 20_000;
const STOP_DEADLINE_MS = 10_000;

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

function positiveInt(name: string, raw: string, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`bench: --${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}\n\n${USAGE}`);
    process.exit(2);
  }
  return n;
}

function parseOptions(argv: string[]): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        seconds: { type: 'string', default: '5' },
        rounds: { type: 'string', default: '5' },
        connections: { type: 'string', default: '10' },
        warmup: { type: 'string', default: '1' },
        'bare-close': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  return {
    seconds: positiveInt('seconds', v.seconds, 1),
    rounds: positiveInt('rounds', v.rounds, 1),
    connections: positiveInt('connections', v.connections, 1),
    warmup: positiveInt('warmup', v.warmup, 0),
    bareClose: v['bare-close'],
  };
}

// ---- configurations ----

interface Config {
  key: string;
  label: string;
  argv: string[];
  /** Worker processes, each of which must answer a probe before measuring (0: the bare server itself). */
  workers: number;
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

// ---- servers: started on a free port, stopped by pid whatever happens ----

const live = new Set<Server>();

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    // detached: the server leads its own process group, which also holds its workers.
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

// Last resort (an exception escaped, or the benchmark was interrupted): no server outlives us.
process.on('exit', () => {
  for (const s of live) signalGroup(s.pid, 'SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\nbench: ${sig}, stopping servers\n`);
    process.exit(128 + os.constants.signals[sig]);
  });
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['PORT', 'WEB_CONCURRENCY', 'GUNICORN_WORKERS', 'PROMFORK_CMD_ARGS', 'NODE_OPTIONS']) delete env[k];
  return env;
}

/** One GET / on a fresh connection (so that the primary dispatches it anew): the pid in the body, or null. */
function probe(url: string): Promise<number | null> {
  return new Promise((resolve) => {
    const req = http.get(`${url}/`, { agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        const m = /hello from worker (\d+)/.exec(body);
        resolve(res.statusCode === 200 && m ? Number(m[1]) : null);
      });
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class Server {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Pids that answered the readiness probes: promfork's workers, or the bare server itself. */
  readonly servingPids = new Set<number>();
  /** The last lines of output, for error messages. */
  private tail: string[] = [];
  private partial = '';
  private exitInfo: string | null = null;
  private readonly exited: Promise<void>;
  private onLine: (() => void) | null = null;
  url = '';

  private constructor(private readonly config: Config) {
    this.proc = spawn(process.execPath, config.argv, {
      cwd: ROOT,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    if (this.proc.pid === undefined) throw new Error(`${config.label}: could not spawn ${config.argv.join(' ')}`);
    this.pid = this.proc.pid;
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.exitInfo = signal ? `signal ${signal}` : `code ${code}`;
        live.delete(this);
        this.onLine?.();
        resolve();
      });
    });
    // Keep draining both pipes for the server's whole life, or a chatty server would block on write.
    this.proc.stdout!.on('data', (chunk: Buffer) => this.feed(chunk));
    this.proc.stderr!.on('data', (chunk: Buffer) => this.feed(chunk));
  }

  static async start(config: Config): Promise<Server> {
    const server = new Server(config);
    try {
      await server.waitListening();
      await server.waitServing();
    } catch (err) {
      await server.stop();
      throw new Error(`${(err as Error).message}; last output:\n${server.tail.join('\n')}`, { cause: err });
    }
    return server;
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }

  private feed(chunk: Buffer): void {
    const lines = (this.partial + chunk.toString()).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      this.tail.push(line);
      if (this.tail.length > 40) this.tail.shift();
      const listening = /Listening at: (http:\/\/[^\s]+)/.exec(line);
      if (listening && !this.url) this.url = listening[1]!;
    }
    this.onLine?.();
  }

  private waitListening(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`${this.config.label}: no "Listening at:" line after ${BOOT_TIMEOUT_MS} ms`)), BOOT_TIMEOUT_MS);
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.onLine = null;
        if (err) reject(err);
        else resolve();
      };
      this.onLine = () => {
        if (this.exitInfo) finish(new Error(`${this.config.label}: exited (${this.exitInfo}) before it listened`));
        else if (this.url) finish();
      };
      this.onLine();
    });
  }

  /**
   * Ready = every worker has answered a request. The app's body names the pid that served it, and
   * each probe opens a new connection, which the primary gives to an idle (sync) or least-loaded
   * (async) worker, starting its scan at a rotating offset: booted workers take turns.
   * (`--log-level debug` would announce "Worker booted", but at debug level workers also log every
   * request, which is what the benchmark would then measure.)
   */
  private async waitServing(): Promise<void> {
    const want = Math.max(1, this.config.workers);
    const deadline = performance.now() + BOOT_TIMEOUT_MS;
    while (this.servingPids.size < want) {
      if (this.exitInfo) throw new Error(`${this.config.label}: exited (${this.exitInfo}) before it served`);
      if (performance.now() > deadline) {
        throw new Error(`${this.config.label}: ${this.servingPids.size} of ${want} worker(s) served after ${BOOT_TIMEOUT_MS} ms`);
      }
      const pid = await probe(this.url);
      if (pid === null) await sleep(50);
      else this.servingPids.add(pid);
    }
  }

  /** SIGTERM (graceful), SIGKILL to the whole process group if it is not gone by the deadline. */
  async stop(deadlineMs = STOP_DEADLINE_MS): Promise<void> {
    if (this.exitInfo === null) {
      try {
        process.kill(this.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        this.exited.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), deadlineMs))),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        process.stderr.write(`bench: ${this.config.label} (pid ${this.pid}) still running after ${deadlineMs} ms, SIGKILL\n`);
        signalGroup(this.pid, 'SIGKILL');
        await this.exited;
      }
    }
    // Workers left behind by a killed primary share its process group.
    signalGroup(this.pid, 'SIGKILL');
    live.delete(this);
  }
}

// ---- CPU accounting (Linux /proc; skipped elsewhere) ----

let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // keep 100
}

/** CPU seconds (user + system) used so far by `pid`, or NaN if unknown. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clockTicks;
  } catch {
    return NaN;
  }
}

/** CPU seconds used so far by the whole machine (every process, every core), or NaN if unknown. */
function machineCpuSeconds(): number {
  try {
    const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user/nice).
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = ticks;
    return (user + nice + system + irq + softirq + steal) / clockTicks;
  } catch {
    return NaN;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
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

function load(url: string, seconds: number, connections: number): Promise<autocannon.Result> {
  return autocannon({ url: `${url}/`, connections, duration: seconds, pipelining: 1 });
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

// ---- report ----

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(head), sep, ...rows.map(line)].join('\n');
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a');

function distMtime(): string {
  try {
    return statSync(CLI).mtime.toISOString();
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (!existsSync(CLI)) {
    process.stderr.write(`bench: ${path.relative(ROOT, CLI)} not found; run \`npm run build\` first\n`);
    process.exit(2);
  }
  const list = configs(opts);
  const perRun = opts.warmup + opts.seconds;
  const cpus = os.cpus();
  process.stdout.write(
    [
      `promfork throughput by worker class: examples/plain.js, GET /, ${WORKERS} workers`,
      `${opts.rounds} rounds x ${list.length} configurations x (${opts.warmup} s warm-up + ${opts.seconds} s measured), ${opts.connections} connections, pipelining 1`,
      `machine: ${cpus.length} CPU(s) (${cpus[0]?.model.trim() ?? 'unknown'}), Node ${process.version}, ${os.platform()} ${os.release()}`,
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

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
