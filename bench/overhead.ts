// The request path's cost of metrics: one worker of a hello-world app with metrics on and with --no-metrics,
// side by side in rounds that alternate the order. The server (primary and worker) is pinned to one core and wrk
// to the other, so that the figure is the worker's own CPU per request, from /proc, beside requests/s. After the
// load, the resident memory of the worker and of the primary (VmRSS) is read: what metrics cost in memory.
//
//   npm run build && flock /tmp/promfork-heavy.lock node --import tsx bench/overhead.ts [--rounds N] [--seconds N]
//
// Needs wrk and taskset (apt-get install wrk util-linux) and at least 2 cores.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  CLI,
  ROOT,
  Server,
  cpuSeconds,
  distMtime,
  failureLog,
  fmt,
  machineLine,
  median,
  parseOrExit,
  positiveInt,
  reportEnd,
  requireBuild,
  runBench,
  table,
} from './lib.js';

const APP = path.join(ROOT, 'bench', 'apps', 'hello.js');

const USAGE = `usage: node --import tsx bench/overhead.ts [options]

  --rounds N       rounds; each runs metrics on and --no-metrics once, the order alternating (default 6)
  --seconds N      measured seconds per run (default 8)
  --warmup N       warm-up seconds before each measured run (default 2)
  --connections N  wrk connections (default 16)
  --server-core N  core of the server, primary and worker (default 1)
  --load-core N    core of wrk (default 0)
  -h, --help       this text
`;

const raw = parseOrExit(USAGE, () =>
  parseArgs({
    options: {
      rounds: { type: 'string', default: '6' },
      seconds: { type: 'string', default: '8' },
      warmup: { type: 'string', default: '2' },
      connections: { type: 'string', default: '16' },
      'server-core': { type: 'string', default: '1' },
      'load-core': { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values,
);
const rounds = positiveInt('rounds', raw.rounds!, 1, USAGE);
const seconds = positiveInt('seconds', raw.seconds!, 1, USAGE);
const warmup = positiveInt('warmup', raw.warmup!, 0, USAGE);
const connections = positiveInt('connections', raw.connections!, 1, USAGE);
const serverCore = positiveInt('server-core', raw['server-core']!, 0, USAGE);
const loadCore = positiveInt('load-core', raw['load-core']!, 0, USAGE);

interface Run {
  metrics: boolean;
  reqPerSec: number;
  requests: number;
  /** Worker CPU microseconds per request. */
  workerUs: number;
  /** Primary CPU microseconds per request. */
  primaryUs: number;
  workerRssMiB: number;
  primaryRssMiB: number;
}

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function pin(core: number, pid: number): void {
  // -a: every thread of the process (libuv's pool, V8's helpers).
  execFileSync('taskset', ['-a', '-c', '-p', String(core), String(pid)], { stdio: 'ignore' });
}

/** wrk pinned to the load core; the total requests and requests/s it reports. */
function wrk(url: string, secs: number): Promise<{ requests: number; reqPerSec: number; errors: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', String(loadCore), 'wrk', '-t1', `-c${connections}`, `-d${secs}s`, url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const requests = /(\d+) requests in/.exec(out);
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
      if (code !== 0 || !requests || !rps) return reject(new Error(`wrk failed (${code}):\n${out}`));
      const errors = /Socket errors:.*|Non-2xx or 3xx responses:.*/g;
      resolve({ requests: Number(requests[1]), reqPerSec: Number(rps[1]), errors: (out.match(errors) ?? []).join('; ') });
    });
  });
}

async function measure(metrics: boolean, fail: (m: string) => void): Promise<Run> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-overhead-'));
  const argv = [CLI, APP, '-w', '1', '-b', '127.0.0.1:0', '--log-level', 'info'];
  if (metrics) argv.push('--metrics-port', '0', '--metrics-bind', '127.0.0.1', '--multiproc-dir', path.join(dir, 'store'));
  else argv.push('--no-metrics');
  const server = await Server.start({ label: metrics ? 'metrics on' : '--no-metrics', argv, workers: 1, metrics });
  try {
    const [worker] = [...server.servingPids];
    for (const pid of [server.pid, worker!]) pin(serverCore, pid);
    if (warmup > 0) await wrk(server.url + '/', warmup);
    const w0 = cpuSeconds(worker!);
    const p0 = cpuSeconds(server.pid);
    const r = await wrk(server.url + '/', seconds);
    const w1 = cpuSeconds(worker!);
    const p1 = cpuSeconds(server.pid);
    if (r.errors) fail(`${server.spec.label}: ${r.errors}`);
    return {
      metrics,
      reqPerSec: r.reqPerSec,
      requests: r.requests,
      workerUs: ((w1 - w0) * 1e6) / r.requests,
      primaryUs: ((p1 - p0) * 1e6) / r.requests,
      workerRssMiB: rssMiB(worker!),
      primaryRssMiB: rssMiB(server.pid),
    };
  } finally {
    await server.stop();
  }
}

runBench(async () => {
  requireBuild();
  if (os.cpus().length < 2) throw new Error('bench/overhead.ts needs 2 cores (server and wrk on different ones)');
  const { failures, fail } = failureLog();
  const builtAt = distMtime();
  console.log(machineLine());
  console.log(`build: ${builtAt}; ${rounds} rounds x ${seconds} s, wrk -t1 -c${connections} on core ${loadCore}, server on core ${serverCore}\n`);
  const runs: Run[] = [];
  const rows: string[][] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? [true, false] : [false, true];
    const pair: Run[] = [];
    for (const metrics of order) {
      const run = await measure(metrics, fail);
      runs.push(run);
      pair.push(run);
      rows.push([
        `${round + 1} ${metrics ? 'metrics on' : '--no-metrics'}`,
        fmt(run.reqPerSec),
        fmt(run.workerUs, 2),
        fmt(run.primaryUs, 2),
        fmt(run.workerRssMiB, 1),
        fmt(run.primaryRssMiB, 1),
      ]);
    }
    const on = pair.find((r) => r.metrics)!;
    const off = pair.find((r) => !r.metrics)!;
    console.log(`round ${round + 1}: CPU/request ratio ${fmt(on.workerUs / off.workerUs, 3)}, req/s ratio ${fmt(on.reqPerSec / off.reqPerSec, 3)}`);
  }
  console.log('\n' + table(['round, server', 'req/s', 'worker CPU us/req', 'primary CPU us/req', 'worker RSS MiB', 'primary RSS MiB'], rows));
  const med = (metrics: boolean, f: (r: Run) => number) => median(runs.filter((r) => r.metrics === metrics).map(f));
  // Ratios per round (each pair ran back to back), then their median.
  const pairs = Array.from({ length: rounds }, (_, i) => runs.slice(2 * i, 2 * i + 2));
  const ratio = (f: (r: Run) => number) =>
    median(pairs.map((p) => f(p.find((r) => r.metrics)!) / f(p.find((r) => !r.metrics)!)));
  console.log('\n' + table(
    ['median', 'metrics on', '--no-metrics', 'on / off'],
    [
      ['req/s', fmt(med(true, (r) => r.reqPerSec)), fmt(med(false, (r) => r.reqPerSec)), fmt(ratio((r) => r.reqPerSec), 3)],
      ['worker CPU us/request', fmt(med(true, (r) => r.workerUs), 2), fmt(med(false, (r) => r.workerUs), 2), fmt(ratio((r) => r.workerUs), 3)],
      ['primary CPU us/request', fmt(med(true, (r) => r.primaryUs), 2), fmt(med(false, (r) => r.primaryUs), 2), fmt(ratio((r) => r.primaryUs), 3)],
      ['worker RSS MiB', fmt(med(true, (r) => r.workerRssMiB), 1), fmt(med(false, (r) => r.workerRssMiB), 1), `+${fmt(med(true, (r) => r.workerRssMiB) - med(false, (r) => r.workerRssMiB), 1)} MiB`],
      ['primary RSS MiB', fmt(med(true, (r) => r.primaryRssMiB), 1), fmt(med(false, (r) => r.primaryRssMiB), 1), `+${fmt(med(true, (r) => r.primaryRssMiB) - med(false, (r) => r.primaryRssMiB), 1)} MiB`],
    ],
  ));
  reportEnd(failures, builtAt);
});
