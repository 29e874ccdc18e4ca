// Shared helpers of the benchmarks (bench/throughput.ts, bench/exporter.ts): servers started on a free port
// and stopped by pid whatever happens, readiness probes, load generation with autocannon, CPU accounting
// from /proc, and the small statistics and table formatting of the reports.
//
// Importing this module installs an `exit` handler (and SIGINT/SIGTERM/SIGHUP handlers that exit) which
// SIGKILLs the process group of every server still running: no server outlives a benchmark.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import autocannon from 'autocannon';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(ROOT, 'dist', 'cli.js');
export const PLAIN_APP = path.join(ROOT, 'examples', 'plain.js');
export const BOOT_TIMEOUT_MS = 20_000;
export const STOP_DEADLINE_MS = 10_000;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---- options ----

/** The integer value of option `--name`, or exit 2 with the usage text. */
export function positiveInt(name: string, raw: string, min: number, usage: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`bench: --${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}\n\n${usage}`);
    process.exit(2);
  }
  return n;
}

/**
 * The values of `parse()` (a node:util parseArgs call): a bad option exits 2 with the usage text, and
 * --help prints it and exits 0.
 */
export function parseOrExit<V extends { help?: boolean }>(usage: string, parse: () => V): V {
  let values: V;
  try {
    values = parse();
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  return values;
}

/** Failures reported as they happen; `failures` decides the exit status at the end. */
export function failureLog(): { failures: string[]; fail: (msg: string) => void } {
  const failures: string[] = [];
  return {
    failures,
    fail(msg: string) {
      failures.push(msg);
      process.stderr.write(`bench: ERROR: ${msg}\n`);
    },
  };
}

/**
 * The end of a run: a warning when dist/ was rebuilt under it (`builtAt` from distMtime() at the start; null: not
 * checked), and exit status 1 with a summary when anything failed.
 */
export function reportEnd(failures: string[], builtAt: string | null): void {
  if (builtAt !== null && distMtime() !== builtAt) {
    process.stdout.write(`WARNING: dist/cli.js was rebuilt during the run (now ${distMtime()}): servers started after that ran other code\n`);
  }
  if (failures.length > 0) {
    process.stderr.write(`\nbench: FAILED: ${failures.length} error(s):\n${failures.map((f) => `  - ${f.split('\n', 1)[0]}`).join('\n')}\n`);
    process.exitCode = 1;
  }
}

/** Run a benchmark's main(): an exception it did not expect fails the run, with its stack. */
export function runBench(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}

/** Fresh store directory paths under a temporary directory removed at exit (promfork creates each, 0700). */
export function freshDirs(prefix: string): () => string {
  const tmp = mkdtempSync(path.join(os.tmpdir(), prefix));
  let n = 0;
  process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
  return () => path.join(tmp, `multiproc-${++n}`);
}

/** The store directory a server spec passes with --multiproc-dir, or null. */
export function multiprocDirOf(spec: ServerSpec): string | null {
  const i = spec.argv.indexOf('--multiproc-dir');
  return i >= 0 ? spec.argv[i + 1]! : null;
}

/** Exit 2 unless dist/cli.js exists (the servers run the build, not the sources). */
export function requireBuild(): void {
  if (!existsSync(CLI)) {
    process.stderr.write(`bench: ${path.relative(ROOT, CLI)} not found; run \`npm run build\` first\n`);
    process.exit(2);
  }
}

// ---- servers: started on a free port, stopped by pid whatever happens ----

export interface ServerSpec {
  label: string;
  /** Arguments of `node`: the script first (or of `command`). */
  argv: string[];
  /** Run this instead of `node` (e.g. ['taskset', '-c', '0', 'gunicorn']); `argv` follows it. */
  command?: string[];
  /** Worker processes, each of which must answer a probe before measuring (0: the server itself serves). */
  workers: number;
  /** Also wait for the `Serving metrics on URL` line. */
  metrics?: boolean;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Time allowed for the listening line(s) and for every worker to serve (default BOOT_TIMEOUT_MS). */
  bootTimeoutMs?: number;
}

const live = new Set<Server>();

export function signalGroup(pid: number, signal: NodeJS.Signals): void {
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

export function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['PORT', 'WEB_CONCURRENCY', 'GUNICORN_WORKERS', 'PROMFORK_CMD_ARGS', 'NODE_OPTIONS']) delete env[k];
  return env;
}

/** One GET / on a fresh connection (so that the primary dispatches it anew): the pid in the body, or null. */
export function probe(url: string): Promise<number | null> {
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

export class Server {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Pids that answered the readiness probes: the workers, or the single-process server itself. */
  readonly servingPids = new Set<number>();
  /** Probes that got an answer (each one is a request the server counted, if it counts requests). */
  probesAnswered = 0;
  /** The last lines of output, for error messages. */
  private readonly tailLines: string[] = [];
  private partial = '';
  private exitInfo: string | null = null;
  private readonly exited: Promise<void>;
  private onLine: (() => void) | null = null;
  private readonly bootTimeoutMs: number;
  url = '';
  metricsUrl = '';

  private constructor(readonly spec: ServerSpec) {
    this.bootTimeoutMs = spec.bootTimeoutMs ?? BOOT_TIMEOUT_MS;
    const [cmd = process.execPath, ...pre] = spec.command ?? [];
    this.proc = spawn(cmd, [...pre, ...spec.argv], {
      cwd: ROOT,
      env: { ...cleanEnv(), ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    if (this.proc.pid === undefined) throw new Error(`${spec.label}: could not spawn ${spec.argv.join(' ')}`);
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

  /** Spawn, wait until it listens and every worker has served; on failure stop it and throw. */
  static async start(spec: ServerSpec): Promise<Server> {
    const server = new Server(spec);
    try {
      await server.waitListening();
      await server.waitServing();
    } catch (err) {
      await server.stop();
      throw new Error(`${(err as Error).message}; last output:\n${server.tail}`, { cause: err });
    }
    return server;
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }

  /** The last lines the server wrote (stdout and stderr). */
  get tail(): string {
    return this.tailLines.join('\n');
  }

  private feed(chunk: Buffer): void {
    const lines = (this.partial + chunk.toString()).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      this.tailLines.push(line);
      if (this.tailLines.length > 40) this.tailLines.shift();
      const listening = /Listening at: (http:\/\/[^\s]+)/.exec(line);
      if (listening && !this.url) this.url = listening[1]!;
      const metrics = /Serving metrics on (https?:\/\/[^\s]+)/.exec(line);
      if (metrics && !this.metricsUrl) this.metricsUrl = metrics[1]!;
    }
    this.onLine?.();
  }

  private waitListening(): Promise<void> {
    const what = this.spec.metrics ? '"Listening at:" and "Serving metrics on" lines' : '"Listening at:" line';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => finish(new Error(`${this.spec.label}: no ${what} after ${this.bootTimeoutMs} ms`)),
        this.bootTimeoutMs,
      );
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.onLine = null;
        if (err) reject(err);
        else resolve();
      };
      this.onLine = () => {
        if (this.exitInfo) finish(new Error(`${this.spec.label}: exited (${this.exitInfo}) before it listened`));
        else if (this.url && (!this.spec.metrics || this.metricsUrl)) finish();
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
    const want = Math.max(1, this.spec.workers);
    const deadline = performance.now() + this.bootTimeoutMs;
    while (this.servingPids.size < want) {
      if (this.exitInfo) throw new Error(`${this.spec.label}: exited (${this.exitInfo}) before it served`);
      if (performance.now() > deadline) {
        throw new Error(`${this.spec.label}: ${this.servingPids.size} of ${want} worker(s) served after ${this.bootTimeoutMs} ms`);
      }
      const pid = await probe(this.url);
      if (pid === null) {
        await sleep(50);
      } else {
        this.probesAnswered++;
        this.servingPids.add(pid);
      }
    }
  }

  /** SIGTERM (graceful), SIGKILL to the whole process group if it is not gone by the deadline. */
  async stop(deadlineMs = STOP_DEADLINE_MS): Promise<void> {
    await stopGroup(this.pid, this.exitInfo !== null, this.exited, deadlineMs, this.spec.label);
    live.delete(this);
  }
}

/**
 * Stop a process started in its own process group: SIGTERM (graceful), SIGKILL to the group if it is not gone by
 * the deadline, and SIGKILL to the group at the end for children left behind (workers of a killed primary).
 */
export async function stopGroup(pid: number, hasExited: boolean, exited: Promise<unknown>, deadlineMs: number, label: string): Promise<void> {
  if (!hasExited) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), deadlineMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      process.stderr.write(`bench: ${label} (pid ${pid}) still running after ${deadlineMs} ms, SIGKILL\n`);
      signalGroup(pid, 'SIGKILL');
      await exited;
    }
  }
  signalGroup(pid, 'SIGKILL');
}

/** Start a server, run `body`, and stop the server by pid in every case. */
export async function withServer<T>(spec: ServerSpec, body: (server: Server) => Promise<T>): Promise<T> {
  const server = await Server.start(spec);
  try {
    return await body(server);
  } finally {
    await server.stop();
  }
}

// ---- load ----

/** `seconds` of keep-alive load on GET `url`/ from this process (this event loop). */
export function load(url: string, seconds: number, connections: number): Promise<autocannon.Result> {
  return autocannon({ url: `${url}/`, connections, duration: seconds, pipelining: 1 });
}

export interface LoadSummary {
  requests: number;
  seconds: number;
  rps: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}

export interface BackgroundLoad {
  /** Stop the load; resolves with what it did. */
  stop(): Promise<LoadSummary>;
}

// The load runs in a worker thread: its own event loop, so that it does not delay the measurements taken
// on the main thread (scrape latencies), while staying inside this process (no process to clean up).
const LOAD_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const autocannon = require(workerData.autocannon);
const instance = autocannon(
  { url: workerData.url, connections: workerData.connections, duration: workerData.maxSeconds, pipelining: 1 },
  (err, r) => parentPort.postMessage(err
    ? { error: String(err && err.message || err) }
    // In a worker thread autocannon returns its raw result (no aggregated requests histogram).
    : { requests: r.totalCompletedRequests ?? r.requests.total, seconds: r.duration, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx }),
);
parentPort.on('message', (m) => { if (m === 'stop') instance.stop(); });
`;

/** Keep-alive load on GET `url`/ in a worker thread until stop() (or `maxSeconds`). */
export function backgroundLoad(url: string, connections: number, maxSeconds = 3600): BackgroundLoad {
  const worker = new Worker(LOAD_THREAD, {
    eval: true,
    workerData: { url: `${url}/`, connections, maxSeconds, autocannon: createRequire(import.meta.url).resolve('autocannon') },
  });
  const result = new Promise<LoadSummary>((resolve, reject) => {
    worker.once('message', (m: Omit<LoadSummary, 'rps'> & { error?: string }) => {
      void worker.terminate();
      if (m.error) reject(new Error(`load generator: ${m.error}`));
      else resolve({ ...m, rps: m.requests / Math.max(m.seconds, 1e-9) });
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`load generator thread exited (code ${code}) without a result`)));
  });
  result.catch(() => {}); // reported by stop()
  return {
    stop() {
      worker.postMessage('stop');
      return result;
    },
  };
}

// ---- CPU accounting (Linux /proc; NaN elsewhere) ----

let clockTicks = 100;
try {
  clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // keep 100
}

/** CPU seconds (user + system) used so far by `pid`, or NaN if unknown. */
export function cpuSeconds(pid: number): number {
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
export function machineCpuSeconds(): number {
  try {
    const [, ...ticks] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user/nice).
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = ticks;
    return (user + nice + system + irq + softirq + steal) / clockTicks;
  } catch {
    return NaN;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// ---- statistics and report ----

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Nearest-rank percentile (p in 0..100): p99 of 200 values is the 198th smallest. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length))) - 1]!;
}

/** A Markdown table: first column left-aligned, the others right-aligned. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(head), sep, ...rows.map(line)].join('\n');
}

export const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a';

/** When dist/cli.js was built (ISO), or 'unknown'. */
export function distMtime(): string {
  try {
    return statSync(CLI).mtime.toISOString();
  } catch {
    return 'unknown';
  }
}

/** One line describing the machine. */
export function machineLine(): string {
  const cpus = os.cpus();
  return `machine: ${cpus.length} CPU(s) (${cpus[0]?.model.trim() ?? 'unknown'}), Node ${process.version}, ${os.platform()} ${os.release()}`;
}
