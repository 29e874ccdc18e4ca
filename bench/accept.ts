// The accept path: requests/s with a new connection per request (`Connection: close`, what nginx's default
// proxying does) and with keep-alive, for promfork against Debian's Gunicorn (`-k sync`, a hello-world WSGI
// app, bench/apps/hello_wsgi.py) and plain node:cluster (bench/cluster-plain.js), plus how the connection
// rate grows from 1 to 2 workers and how fairly promfork's workers share the load.
// A benchmark, not a test: it prints figures and fails only if a server failed or wrk saw errors.
//
//   npm run build && node --import tsx bench/accept.ts [--seconds N] [--rounds N] [--connections N]
//
// The server is pinned to CPU 0 and wrk (one thread) to CPU 1 with taskset: on this 2-core machine the
// server's processes (primary and workers) share one core, wrk has the other; two scaling rows (promfork -w 1
// and -w 2) run unpinned, wrk and the server sharing both cores. Configurations alternate
// within each round (the order rotates from round to round); each measurement starts a fresh server, warms
// it up for a second, then runs wrk for --seconds. CPU per request is the server's process group's user +
// system time from /proc over the measured run, divided by the requests wrk completed; the system (kernel) part
// is reported beside it. A single-process node:http server (bench/bare-server.js) is the floor of what Node's
// HTTP server costs per connection on this machine. Fairness: requests
// per worker over the measured run, from promfork's own per-worker counter (metrics on), max/min.
// Gunicorn is used when `gunicorn` is on PATH (Debian: apt-get install gunicorn); the report says when not.

import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  CLI,
  PLAIN_APP,
  ROOT,
  Server,
  failureLog,
  fmt,
  freshDirs,
  machineLine,
  median,
  parseOrExit,
  positiveInt,
  reportEnd,
  requireBuild,
  runBench,
  table,
  type ServerSpec,
} from './lib.js';

const USAGE = `usage: node --import tsx bench/accept.ts [options]

  --seconds N      measured seconds per run (default 5)
  --rounds N       rounds; each round runs every configuration once (default 5)
  --connections N  wrk connections (default 32)
  --single-accept  also run promfork with UV_TCP_SINGLE_ACCEPT=1 (libuv's single-accept mode)
  -h, --help       this text

Needs a build (npm run build), wrk and taskset; Gunicorn is optional (apt-get install gunicorn).
`;

const opts = parseOrExit(USAGE, () =>
  parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '5' },
      connections: { type: 'string', default: '32' },
      'single-accept': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values,
);
const SECONDS = positiveInt('seconds', opts.seconds!, 1, USAGE);
const ROUNDS = positiveInt('rounds', opts.rounds!, 1, USAGE);
const CONNECTIONS = positiveInt('connections', opts.connections!, 1, USAGE);
const SINGLE_ACCEPT = opts['single-accept'] === true;
const SERVER_CPU = ['taskset', '-c', '0'];
const WRK_CPU = ['taskset', '-c', '1'];
const storeDir = freshDirs('promfork-bench-accept-');
const { failures, fail } = failureLog();

type Mode = 'close' | 'keep-alive';

interface Config {
  label: string;
  mode: Mode;
  workers: number;
  spec: (label: string) => ServerSpec;
  /** Count requests per worker from promfork's metrics. */
  fairness?: boolean;
  /** Neither the server nor wrk pinned: they share both cores (the -w 1 -> -w 2 scaling rows). */
  unpinned?: boolean;
}

function promfork(extra: string[], workers: number, metrics: boolean, env?: Record<string, string>, pinned = true) {
  return (label: string): ServerSpec => ({
    label,
    env,
    command: [...(pinned ? SERVER_CPU : []), process.execPath],
    argv: [CLI, PLAIN_APP, '-b', '127.0.0.1:0', '-w', String(workers), ...extra, ...(metrics ? ['--metrics-port', '0', '--metrics-bind', '127.0.0.1', '--multiproc-dir', storeDir()] : ['--no-metrics'])],
    workers,
    metrics,
  });
}

function gunicorn(workers: number) {
  return (label: string): ServerSpec => ({
    label,
    command: [...SERVER_CPU, 'gunicorn'],
    argv: ['-k', 'sync', '-w', String(workers), '-b', '127.0.0.1:0', '--chdir', path.join(ROOT, 'bench', 'apps'), 'hello_wsgi:app'],
    workers,
  });
}

function cluster(workers: number) {
  return (label: string): ServerSpec => ({
    label,
    command: [...SERVER_CPU, process.execPath],
    argv: [path.join(ROOT, 'bench', 'cluster-plain.js'), '--workers', String(workers)],
    workers,
  });
}

function bare() {
  return (label: string): ServerSpec => ({
    label,
    command: [...SERVER_CPU, process.execPath],
    argv: [path.join(ROOT, 'bench', 'bare-server.js')],
    workers: 0,
  });
}

function haveGunicorn(): boolean {
  try {
    execFileSync('gunicorn', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// ---- measurement ----

/** CPU seconds (user, system) of a process and its descendants (live ones, plus the reaped ones' cutime/cstime). */
function groupCpu(pid: number): { user: number; sys: number } {
  let user = 0;
  let sys = 0;
  const visit = (p: number, root: boolean) => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      user += Number(f[11]) + (root ? Number(f[13]) : 0);
      sys += Number(f[12]) + (root ? Number(f[14]) : 0);
      const kids = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim();
      for (const k of kids ? kids.split(/\s+/) : []) visit(Number(k), false);
    } catch {
      // gone
    }
  };
  visit(pid, true);
  return { user: user / 100, sys: sys / 100 };
}

interface WrkResult {
  rps: number;
  requests: number;
  errors: string | null;
}

function wrk(url: string, mode: Mode, seconds: number, pinned: boolean): Promise<WrkResult> {
  const [cmd, ...pre] = pinned ? WRK_CPU : ['wrk'];
  const args = [...pre, ...(pinned ? ['wrk'] : []), '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, ...(mode === 'close' ? ['-H', 'Connection: close'] : []), `${url}/`];
  return new Promise((resolve, reject) => {
    const p = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (out += d));
    p.on('error', reject);
    p.on('exit', (code) => {
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const reqs = /(\d+) requests in/.exec(out);
      if (code !== 0 || !rps || !reqs) return reject(new Error(`wrk failed (${code}): ${out}`));
      const socket = /Socket errors:.*/.exec(out)?.[0] ?? null;
      const non2xx = /Non-2xx or 3xx responses: \d+/.exec(out)?.[0] ?? null;
      resolve({ rps: Number(rps[1]), requests: Number(reqs[1]), errors: [socket, non2xx].filter(Boolean).join('; ') || null });
    });
  });
}

function scrape(url: string): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          const m = new Map<string, number>();
          for (const x of body.matchAll(/^gunicorn_worker_requests_total\{worker_id="([^"]+)"\} (\S+)$/gm)) m.set(x[1]!, Number(x[2]));
          resolve(m);
        });
      })
      .on('error', reject);
  });
}

interface Sample {
  rps: number;
  cpuUsPerReq: number;
  /** The kernel's part of cpuUsPerReq (system time). */
  sysUsPerReq: number;
  fairness: number | null;
}

async function measure(c: Config): Promise<Sample> {
  const server = await Server.start(c.spec(c.label));
  try {
    await wrk(server.url, c.mode, 1, !c.unpinned);
    const before = c.fairness ? await scrape(server.metricsUrl) : null;
    const cpu0 = groupCpu(server.pid);
    const r = await wrk(server.url, c.mode, SECONDS, !c.unpinned);
    const cpu1 = groupCpu(server.pid);
    const cpu = cpu1.user + cpu1.sys - cpu0.user - cpu0.sys;
    const sys = cpu1.sys - cpu0.sys;
    if (r.errors) fail(`${c.mode}: ${c.label}: wrk reported ${r.errors}`);
    let fairness: number | null = null;
    if (before) {
      const after = await scrape(server.metricsUrl);
      const counts = [...after].map(([id, v]) => v - (before.get(id) ?? 0));
      fairness = counts.length >= 2 ? Math.max(...counts) / Math.max(1, Math.min(...counts)) : null;
    }
    return { rps: r.rps, cpuUsPerReq: (cpu / Math.max(1, r.requests)) * 1e6, sysUsPerReq: (sys / Math.max(1, r.requests)) * 1e6, fairness };
  } finally {
    await server.stop();
  }
}

// ---- the run ----

runBench(async () => {
  requireBuild();
  const gunicornHere = haveGunicorn();
  const configs: Config[] = [
    ...(gunicornHere ? [{ label: 'gunicorn -k sync -w 2', mode: 'close' as Mode, workers: 2, spec: gunicorn(2) }] : []),
    { label: 'node:cluster -w 2', mode: 'close', workers: 2, spec: cluster(2) },
    { label: 'promfork -w 2 (default: async, metrics)', mode: 'close', workers: 2, spec: promfork([], 2, true), fairness: true },
    { label: 'promfork -k sync -w 2 (metrics)', mode: 'close', workers: 2, spec: promfork(['-k', 'sync'], 2, true), fairness: true },
    { label: 'promfork -w 2 --no-metrics', mode: 'close', workers: 2, spec: promfork([], 2, false) },
    ...(gunicornHere ? [{ label: 'gunicorn -k sync -w 1', mode: 'close' as Mode, workers: 1, spec: gunicorn(1) }] : []),
    { label: 'promfork -w 1 (default)', mode: 'close', workers: 1, spec: promfork([], 1, true) },
    { label: 'bare node:http, 1 process', mode: 'close', workers: 1, spec: bare() },
    // Scaling with the 2 cores shared by the server and wrk (nothing pinned).
    { label: 'promfork -w 1 (default), unpinned', mode: 'close', workers: 1, spec: promfork([], 1, true, undefined, false), unpinned: true },
    { label: 'promfork -w 2 (default), unpinned', mode: 'close', workers: 2, spec: promfork([], 2, true, undefined, false), unpinned: true },
    { label: 'node:cluster -w 2', mode: 'keep-alive', workers: 2, spec: cluster(2) },
    { label: 'promfork -w 2 --no-metrics', mode: 'keep-alive', workers: 2, spec: promfork([], 2, false) },
    { label: 'promfork -w 2 (default)', mode: 'keep-alive', workers: 2, spec: promfork([], 2, true), fairness: true },
    // libuv's single-accept mode (a 1 ns sleep after each accept, letting another process take the next one).
    ...(SINGLE_ACCEPT
      ? ([
          { label: 'promfork -w 2 UV_TCP_SINGLE_ACCEPT=1', mode: 'close', workers: 2, spec: promfork([], 2, true, { UV_TCP_SINGLE_ACCEPT: '1' }), fairness: true },
          { label: 'promfork -w 2 UV_TCP_SINGLE_ACCEPT=1', mode: 'keep-alive', workers: 2, spec: promfork([], 2, true, { UV_TCP_SINGLE_ACCEPT: '1' }), fairness: true },
        ] as Config[])
      : []),
  ];
  const key = (c: Config) => `${c.mode}: ${c.label}`;
  const samples = new Map<string, Sample[]>(configs.map((c) => [key(c), []]));
  process.stdout.write(`${machineLine()}\n`);
  process.stdout.write(`wrk -t1 -c${CONNECTIONS} -d${SECONDS}s on CPU 1, servers on CPU 0; ${ROUNDS} rounds, rotating order\n`);
  if (!gunicornHere) process.stdout.write('gunicorn is not installed (apt-get install gunicorn): its rows are left out\n');
  for (let round = 0; round < ROUNDS; round++) {
    const order = configs.map((_, i) => configs[(i + round) % configs.length]!);
    for (const c of order) {
      const s = await measure(c);
      samples.get(key(c))!.push(s);
      process.stdout.write(`round ${round + 1} ${key(c)}: ${fmt(s.rps)} req/s, ${fmt(s.cpuUsPerReq, 1)} us CPU/req (${fmt(s.sysUsPerReq, 1)} system)${s.fairness ? `, max/min ${fmt(s.fairness, 2)}` : ''}\n`);
    }
  }
  const med = (c: Config) => median(samples.get(key(c))!.map((s) => s.rps));
  const find = (mode: Mode, label: string) => configs.find((c) => c.mode === mode && c.label === label);
  const rows = configs.map((c) => {
    const ss = samples.get(key(c))!;
    const fair = ss.map((s) => s.fairness).filter((f): f is number => f !== null);
    return [key(c), fmt(med(c)), `${fmt(Math.min(...ss.map((s) => s.rps)))}-${fmt(Math.max(...ss.map((s) => s.rps)))}`, fmt(median(ss.map((s) => s.cpuUsPerReq)), 1), fmt(median(ss.map((s) => s.sysUsPerReq)), 1), fair.length ? `${fmt(median(fair), 2)} (max ${fmt(Math.max(...fair), 2)})` : ''];
  });
  process.stdout.write(`\n${table(['configuration', 'req/s (median)', 'range', 'CPU us/req', 'of it system', 'fairness max/min'], rows)}\n\n`);
  const ratio = (a?: Config, b?: Config) => (a && b ? fmt(med(a) / med(b), 2) : 'n/a');
  const gun2 = find('close', 'gunicorn -k sync -w 2');
  const pfDefault = find('close', 'promfork -w 2 (default: async, metrics)');
  process.stdout.write(
    [
      `per request: promfork default / gunicorn sync = ${ratio(pfDefault, gun2)} (target >= 1.3)`,
      `per request: promfork default / node:cluster = ${ratio(pfDefault, find('close', 'node:cluster -w 2'))} (target >= 2)`,
      `per request: promfork -k sync / gunicorn sync = ${ratio(find('close', 'promfork -k sync -w 2 (metrics)'), gun2)} (target >= 0.8)`,
      `keep-alive: promfork --no-metrics / node:cluster = ${ratio(find('keep-alive', 'promfork -w 2 --no-metrics'), find('keep-alive', 'node:cluster -w 2'))} (target >= 0.97)`,
      `per request, -w 1 -> -w 2: promfork ${ratio(pfDefault, find('close', 'promfork -w 1 (default)'))}x, gunicorn ${ratio(gun2, find('close', 'gunicorn -k sync -w 1'))}x (server on one core, wrk on the other)`,
      `per request, -w 1 -> -w 2, nothing pinned (wrk and the server share the 2 cores): promfork ${ratio(find('close', 'promfork -w 2 (default), unpinned'), find('close', 'promfork -w 1 (default), unpinned'))}x`,
    ].join('\n') + '\n',
  );
  reportEnd(failures, null);
});
