// Scrape latency, promfork against prom-client's AggregatorRegistry (node:cluster, bench/cluster-baseline.js), in
// the same run: both serve bench/apps/many-series.js (BENCH_SERIES app series per worker, 1,000 by default, plus
// each one's own request metrics), idle and while wrk loads GET / (-t2 -c32 by default). Rounds alternate which
// server runs first; each server is freshly started, ready once /metrics shows every worker's series.
//
//   npm run build && flock /tmp/promfork-heavy.lock node --import tsx bench/scrape-compare.ts \
//     [--workers 2,32] [--rounds 2] [--scrapes 100] [--series 1000] [--connections 32] [--threads 2]
//
// Needs wrk (apt-get install wrk).

import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  CLI,
  ROOT,
  Server,
  distMtime,
  failureLog,
  fmt,
  machineLine,
  median,
  parseOrExit,
  percentile,
  positiveInt,
  reportEnd,
  requireBuild,
  runBench,
  sleep,
  table,
  type ServerSpec,
} from './lib.js';
import { sampleValues, scrape } from './scrape.js';

const MANY_SERIES = path.join(ROOT, 'bench', 'apps', 'many-series.js');
const CLUSTER = path.join(ROOT, 'bench', 'cluster-baseline.js');
const WARMUP_SCRAPES = 10;

const USAGE = `usage: node --import tsx bench/scrape-compare.ts [options]

  --workers LIST     worker counts (default 2,32)
  --rounds N         rounds per worker count, the servers' order alternating (default 2)
  --scrapes N        sequential scrapes per phase (default 100)
  --series N         app series per worker (default 1000)
  --connections N    wrk connections of the load (default 32)
  --threads N        wrk threads (default 2)
  -h, --help         this text
`;

const v = parseOrExit(USAGE, () =>
  parseArgs({
    options: {
      workers: { type: 'string', default: '2,32' },
      rounds: { type: 'string', default: '2' },
      scrapes: { type: 'string', default: '100' },
      series: { type: 'string', default: '1000' },
      connections: { type: 'string', default: '32' },
      threads: { type: 'string', default: '2' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values,
);
const workerCounts = v.workers!.split(',').map((w) => positiveInt('workers', w, 1, USAGE));
const rounds = positiveInt('rounds', v.rounds!, 1, USAGE);
const scrapes = positiveInt('scrapes', v.scrapes!, 1, USAGE);
const series = positiveInt('series', v.series!, 1, USAGE);
const connections = positiveInt('connections', v.connections!, 1, USAGE);
const threads = positiveInt('threads', v.threads!, 1, USAGE);

type Kind = 'promfork' | 'prom-client';

function spec(kind: Kind, workers: number): ServerSpec {
  const bootTimeoutMs = Math.max(20_000, workers * 3000);
  const env = { BENCH_SERIES: String(series) };
  if (kind === 'prom-client') {
    return { label: `prom-client cluster -w ${workers}`, argv: [CLUSTER, '--workers', String(workers), '--app', MANY_SERIES], workers, metrics: true, env, bootTimeoutMs };
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-scrape-'));
  return {
    label: `promfork -w ${workers}`,
    argv: [CLI, MANY_SERIES, '-w', String(workers), '-b', '127.0.0.1:0', '--metrics-port', '0', '--metrics-bind', '127.0.0.1',
      '--multiproc-dir', path.join(dir, 'store'), '--log-level', 'info'],
    workers,
    metrics: true,
    env,
    bootTimeoutMs,
  };
}

/** Ready: /metrics shows the app's series (every worker contributed) and, for promfork, every seat running. */
async function waitReady(server: Server, kind: Kind, workers: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last: string;
  for (;;) {
    const r = await scrape(server.metricsUrl, false, false);
    if (r.error === null) {
      const app = sampleValues(r.body, 'bench_app_requests_total').length;
      const running = kind === 'promfork' ? sampleValues(r.body, 'promfork_worker_snapshot_age_seconds').length : workers;
      if (app === series && running === workers) return;
      last = `${app} app series, ${running} seats with snapshots`;
    } else last = r.error;
    if (performance.now() > deadline) throw new Error(`${server.spec.label}: not ready after ${timeoutMs} ms (${last})`);
    await sleep(200);
  }
}

function startWrk(url: string): { stop(): Promise<string> } {
  const child = spawn('wrk', [`-t${threads}`, `-c${connections}`, '-d3600s', `${url}/`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', (err) => (out += String(err)));
  return {
    async stop() {
      child.kill('SIGINT'); // wrk prints its summary on SIGINT
      await exited;
      return out;
    },
  };
}

async function phase(url: string, check: (body: string) => boolean): Promise<{ ms: number[]; failed: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const ms: number[] = [];
  let failed = 0;
  try {
    for (let i = 0; i < scrapes; i++) {
      const r = await scrape(url, agent, false);
      if (r.error === null && check(r.body)) ms.push(r.ms);
      else failed++;
    }
  } finally {
    agent.destroy();
  }
  return { ms, failed };
}

interface Result {
  kind: Kind;
  workers: number;
  round: number;
  idle: number[];
  loaded: number[];
  loadRps: number;
}

async function run(kind: Kind, workers: number, round: number, fail: (m: string) => void): Promise<Result> {
  const s = spec(kind, workers);
  const server = await Server.start(s);
  try {
    await waitReady(server, kind, workers, s.bootTimeoutMs!);
    const check = (body: string) => sampleValues(body, 'bench_app_requests_total').length === series;
    for (let i = 0; i < WARMUP_SCRAPES; i++) await scrape(server.metricsUrl, false, false);
    const idle = await phase(server.metricsUrl, check);
    const load = startWrk(server.url);
    await sleep(1000);
    let loaded: { ms: number[]; failed: number };
    let wrkOut: string;
    try {
      loaded = await phase(server.metricsUrl, check);
    } finally {
      wrkOut = await load.stop();
    }
    if (idle.failed || loaded.failed) fail(`${s.label}: ${idle.failed} idle and ${loaded.failed} loaded scrapes failed or were incomplete`);
    if (/Socket errors|Non-2xx/.test(wrkOut)) fail(`${s.label}: wrk: ${/(Socket errors.*|Non-2xx.*)/.exec(wrkOut)?.[1]}`);
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(wrkOut)?.[1] ?? NaN);
    return { kind, workers, round, idle: idle.ms, loaded: loaded.ms, loadRps: rps };
  } finally {
    await server.stop();
  }
}

runBench(async () => {
  requireBuild();
  const { failures, fail } = failureLog();
  const builtAt = distMtime();
  console.log(machineLine());
  console.log(`build: ${builtAt}; ${rounds} round(s), ${scrapes} scrapes per phase, ${series} app series per worker, load wrk -t${threads} -c${connections}\n`);
  const results: Result[] = [];
  for (const workers of workerCounts) {
    for (let round = 0; round < rounds; round++) {
      const order: Kind[] = round % 2 === 0 ? ['promfork', 'prom-client'] : ['prom-client', 'promfork'];
      for (const kind of order) {
        try {
          const r = await run(kind, workers, round, fail);
          results.push(r);
          console.log(
            `${workers} workers, round ${round + 1}, ${kind}: idle p50 ${fmt(percentile(r.idle, 50), 1)} p99 ${fmt(percentile(r.idle, 99), 1)} ms; ` +
              `loaded (${fmt(r.loadRps)} req/s) p50 ${fmt(percentile(r.loaded, 50), 1)} p99 ${fmt(percentile(r.loaded, 99), 1)} ms`,
          );
        } catch (err) {
          fail(`${kind}, ${workers} workers, round ${round + 1}: ${(err as Error).message}`);
        }
      }
    }
  }
  const rows: string[][] = [];
  for (const workers of workerCounts) {
    for (const ph of ['idle', 'loaded'] as const) {
      const all = (k: Kind) => results.filter((r) => r.workers === workers && r.kind === k).flatMap((r) => r[ph]);
      const rps = (k: Kind) => median(results.filter((r) => r.workers === workers && r.kind === k).map((r) => r.loadRps));
      const pf = all('promfork');
      const pc = all('prom-client');
      rows.push([
        `${workers} workers, ${ph === 'idle' ? 'idle' : `under wrk -t${threads} -c${connections}`}`,
        `${fmt(percentile(pf, 50), 1)} / ${fmt(percentile(pf, 99), 1)}`,
        `${fmt(percentile(pc, 50), 1)} / ${fmt(percentile(pc, 99), 1)}`,
        fmt(percentile(pf, 99) / percentile(pc, 99), 2),
        ph === 'idle' ? '–' : `${fmt(rps('promfork'))} / ${fmt(rps('prom-client'))}`,
        `${pf.length} / ${pc.length}`,
      ]);
    }
  }
  console.log('\n' + table(['phase', 'promfork p50 / p99 ms', 'prom-client p50 / p99 ms', 'p99 ratio', 'load req/s (promfork / prom-client)', 'scrapes'], rows));
  reportEnd(failures, builtAt);
});
