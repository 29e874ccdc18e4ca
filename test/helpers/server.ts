// Starts the real promfork CLI (dist/cli.js) as a child process on a free loopback port,
// waits on its log lines (never sleeps), and always stops it, by pid, when the test ends.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(ROOT, 'dist', 'cli.js');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');
export const APP = path.join(FIXTURES, 'apps', 'behaviours.js') + ':app';

const running = new Set<PromforkProcess>();

// Registered at import, so on the test file's root: every server still running is stopped at the end
// of the file, and killed by pid if the runner exits first.
after(async () => {
  await Promise.all([...running].map((s) => s.stop(2000)));
});
process.on('exit', () => {
  for (const s of running) for (const pid of [s.pid, ...s.workerPids()]) killQuietly(pid, 'SIGKILL');
});

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Wait for this many booted workers before returning (default: the --workers value, else 1). 0 = do not wait. */
  waitWorkers?: number;
  /** Add `-b 127.0.0.1:0` unless the args bind already. */
  autoBind?: boolean;
  /** The error log goes to this file (--error-logfile): read the log lines from it. */
  logFile?: string;
  /** Run through this command first, e.g. ['/bin/sh', '-c', 'ulimit -f 16; exec "$0" "$@"'] (it must exec). */
  wrapper?: string[];
  /** Called as soon as the process is spawned (before it listens). */
  onSpawn?: (server: PromforkProcess) => void;
}

export class PromforkProcess {
  readonly proc: ChildProcess;
  output = '';
  private waiters: { re: RegExp; from: number; resolve: (m: RegExpMatchArray) => void }[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[], opts: StartOptions = {}) {
    const [cmd, ...pre] = opts.wrapper ?? [process.execPath];
    const argv = opts.wrapper ? [...pre, process.execPath, CLI, ...args] : [CLI, ...args];
    this.proc = spawn(cmd!, argv, {
      cwd: opts.cwd ?? ROOT,
      env: { ...cleanEnv(), ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const onData = (chunk: Buffer) => {
      if (chunk.length === 0) return;
      this.output += chunk.toString();
      this.checkWaiters();
    };
    this.proc.stdout!.on('data', onData);
    this.proc.stderr!.on('data', onData);
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => resolve({ code, signal })));
    if (opts.logFile) {
      // Poll the log file; its lines are appended to `output` like the console's.
      const file = opts.logFile;
      let offset = 0;
      const poll = setInterval(() => {
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch {
          return;
        }
        if (text.length < offset) offset = 0; // rotated
        if (text.length > offset) {
          this.output += text.slice(offset);
          offset = text.length;
          this.checkWaiters();
          this.proc.stdout!.emit('data', Buffer.alloc(0));
        }
      }, 25);
      void this.exited.then(() => clearInterval(poll));
    }
    running.add(this);
    void this.exited.then(() => running.delete(this));
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Resolve when a log line matching `re` appears after output offset `from` (default: anywhere). */
  waitFor(re: RegExp, { from = 0, timeoutMs = 15_000 } = {}): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re}; output:\n${this.output}`));
      }, timeoutMs);
      const done = (m: RegExpMatchArray) => {
        clearTimeout(timer);
        resolve(m);
      };
      this.waiters.push({ re, from, resolve: done });
      this.checkWaiters();
    });
  }

  /** Resolve when `count` lines match `re` after `from`. */
  async waitForCount(re: RegExp, count: number, { from = 0, timeoutMs = 15_000 } = {}): Promise<RegExpMatchArray[]> {
    const global = new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const matches = [...this.output.slice(from).matchAll(global)];
      if (matches.length >= count) return matches;
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${count} x ${re} (saw ${matches.length}); output:\n${this.output}`);
      }
      await this.nextOutput(deadline - Date.now());
    }
  }

  private nextOutput(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const { stdout, stderr } = this.proc;
      const done = () => {
        clearTimeout(timer);
        stdout!.off('data', done);
        stderr!.off('data', done);
        this.proc.off('exit', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, ms));
      stdout!.on('data', done);
      stderr!.on('data', done);
      this.proc.once('exit', done);
    });
  }

  private checkWaiters(): void {
    for (const w of [...this.waiters]) {
      const m = this.output.slice(w.from).match(w.re);
      if (m) {
        this.waiters = this.waiters.filter((x) => x !== w);
        w.resolve(m);
      }
    }
  }

  /** Worker pids: the primary's live child processes, from /proc. */
  workerPids(): number[] {
    try {
      const text = readFileSync(`/proc/${this.pid}/task/${this.pid}/children`, 'utf8').trim();
      return text === '' ? [] : text.split(/\s+/).map(Number).sort((a, b) => a - b);
    } catch {
      return [];
    }
  }

  signal(sig: NodeJS.Signals): void {
    process.kill(this.pid, sig);
  }

  /** Stop by pid: TERM, then SIGKILL for the primary and any child left after a grace period. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const children = this.workerPids();
    try {
      this.proc.kill('SIGTERM');
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      for (const pid of [this.pid, ...children]) killQuietly(pid, 'SIGKILL');
    }, graceMs);
    await this.exited;
    clearTimeout(timer);
    for (const pid of children) killQuietly(pid, 'SIGKILL');
  }
}

function killQuietly(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // not running
  }
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['PORT', 'WEB_CONCURRENCY', 'GUNICORN_WORKERS', 'PROMFORK_CMD_ARGS', 'NODE_OPTIONS']) delete env[k];
  return env;
}

/** Start promfork and wait until it listens and its workers booted. Stopped automatically after the test file. */
export interface Started {
  server: PromforkProcess;
  port: number;
  url: string;
  /** http(s)://127.0.0.1:PORT/metrics, or '' with --no-metrics. */
  metricsUrl: string;
  multiprocDir: string;
}

export async function startServer(args: string[], opts: StartOptions = {}): Promise<Started> {
  const has = (flag: string) => args.some((a) => a === flag || a.startsWith(`${flag}=`));
  const bindGiven = has('-b') || has('--bind');
  let full = opts.autoBind === false || bindGiven ? args : ['-b', '127.0.0.1:0', ...args];
  // Each server gets its own free metrics port on loopback and its own store directory.
  const multiprocDir = has('--multiproc-dir') ? '' : mkdtempSync(path.join(os.tmpdir(), 'promfork-mp-'));
  if (!has('--metrics-port') && !opts.env?.PROMETHEUS_METRICS_PORT) full = ['--metrics-port', '0', ...full];
  if (!has('--metrics-bind') && !opts.env?.PROMETHEUS_BIND_ADDRESS) full = ['--metrics-bind', '127.0.0.1', ...full];
  if (multiprocDir && !opts.env?.PROMETHEUS_MULTIPROC_DIR) full = ['--multiproc-dir', path.join(multiprocDir, 'store'), ...full];
  const withDebug = full.some((a) => a.startsWith('--log-level')) ? full : ['--log-level', 'debug', ...full];
  const server = new PromforkProcess(withDebug, opts);
  opts.onSpawn?.(server);
  const m = await Promise.race([
    server.waitFor(/Listening at: http:\/\/[^:]+:(\d+)/),
    server.exited.then(({ code }) => {
      throw new Error(`promfork exited with ${code} before listening:\n${server.output}`);
    }),
  ]);
  const port = Number(m[1]);
  const wIndex = full.findIndex((a) => a === '-w' || a === '--workers');
  const expected = opts.waitWorkers ?? (wIndex >= 0 ? Number(full[wIndex + 1]) : 1);
  if (expected > 0) await server.waitForCount(/Worker booted \(pid:\d+/, expected);
  let metricsUrl = '';
  if (!has('--no-metrics')) {
    const mm = await server.waitFor(/Serving metrics on (https?:\/\/\S+\/metrics)/);
    metricsUrl = mm[1]!;
  }
  return { server, port, url: `http://127.0.0.1:${port}`, metricsUrl, multiprocDir };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection (no keep-alive agent), so each request is independent. */
export function request(url: string, opts: { method?: string; body?: string | Buffer; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Run `concurrency` request loops against `url` until `stop()`; bounded by `maxRequests` and `maxMs`. */
export function loadLoop(url: string, { concurrency = 4, maxRequests = 100_000, maxMs = 60_000 } = {}) {
  let running = true;
  let sent = 0;
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  const started = Date.now();
  const loop = async () => {
    while (running && sent < maxRequests && Date.now() - started < maxMs) {
      sent++;
      try {
        const r = await request(url, { timeoutMs: 20_000 });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.status !== 200) failures.push(`status ${r.status}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const done = Promise.all(Array.from({ length: concurrency }, loop));
  return {
    get sent() {
      return sent;
    },
    failures,
    statuses,
    async stop() {
      running = false;
      await done;
    },
  };
}
