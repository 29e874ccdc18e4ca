// What a SIGKILLed worker loses: `--requests` sequential requests (keep-alive) to a hello-world app on 2 workers;
// halfway, the worker that answered the last request is SIGKILLed (as the out-of-memory killer would). Once the
// requests are done, /metrics is scraped: gunicorn_worker_requests_total against the requests answered (200s)
// is the loss. It is also given as milliseconds of the killed worker's traffic (lost / its request rate over the
// 500 requests before the kill): the window is the time since its last push, at most busyPushMs() plus one tick and one write (docs/metrics.md).
//
//   npm run build && flock /tmp/promfork-heavy.lock node --import tsx bench/sigkill-loss.ts [--rounds 3] [--requests 3000]
//       [--flush-interval S]

import http from 'node:http';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, ROOT, Server, distMtime, failureLog, machineLine, median, parseOrExit, positiveInt, reportEnd, requireBuild, runBench, sleep, table } from './lib.js';
import { sampleValues, scrape } from './scrape.js';

const APP = path.join(ROOT, 'bench', 'apps', 'hello.js');
const RATE_WINDOW = 500;
const USAGE = `usage: node --import tsx bench/sigkill-loss.ts [--rounds N] [--requests N] [--flush-interval S]\n`;
const v = parseOrExit(USAGE, () =>
  parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      requests: { type: 'string', default: '3000' },
      'flush-interval': { type: 'string', default: '1' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values,
);
const rounds = positiveInt('rounds', v.rounds!, 1, USAGE);
const total = positiveInt('requests', v.requests!, 2, USAGE);
const flushInterval = Number(v['flush-interval']);

function get(url: string, agent: http.Agent): Promise<{ status: number; pid: number }> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, pid: Number(/worker (\d+)/.exec(body)?.[1] ?? 0) }));
      res.on('error', () => resolve({ status: 0, pid: 0 }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, pid: 0 }));
  });
}

runBench(async () => {
  requireBuild();
  const { failures, fail } = failureLog();
  const builtAt = distMtime();
  console.log(machineLine());
  console.log(`build: ${builtAt}; ${rounds} rounds of ${total} sequential keep-alive requests, 2 workers, --metrics-flush-interval ${flushInterval}\n`);
  const rows: string[][] = [];
  const losses: number[] = [];
  const lostMs: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-kill-'));
    const server = await Server.start({
      label: 'promfork -w 2',
      argv: [CLI, APP, '-w', '2', '-b', '127.0.0.1:0', '--metrics-port', '0', '--metrics-bind', '127.0.0.1',
        '--multiproc-dir', path.join(dir, 'store'), '--metrics-flush-interval', String(flushInterval), '--log-level', 'info'],
      workers: 2,
      metrics: true,
    });
    try {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      let ok = server.probesAnswered;
      let lastPid = 0;
      const t0 = performance.now();
      let killedRate = 0;
      const half = Math.floor(total / 2);
      // The killed worker's request rate just before the kill (it answered every request so far: one keep-alive
      // connection), over the last RATE_WINDOW requests (the first ones are slower: JIT).
      const window = Math.min(RATE_WINDOW, half);
      let windowStart = t0;
      for (let i = 0; i < total; i++) {
        if (i === half - window) windowStart = performance.now();
        if (i === half) {
          killedRate = window / ((performance.now() - windowStart) / 1000);
          process.kill(lastPid, 'SIGKILL');
        }
        const r = await get(`${server.url}/`, agent);
        if (r.status === 200) {
          ok++;
          lastPid = r.pid;
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      agent.destroy();
      await sleep(500);
      const s = await scrape(server.metricsUrl, false, false);
      const counted = sampleValues(s.body, 'gunicorn_worker_requests_total').reduce((a, b) => a + b, 0);
      const held = sampleValues(s.body, 'promfork_held_decreases_total').reduce((a, b) => a + b, 0);
      if (held !== 0) fail(`round ${round + 1}: promfork_held_decreases_total ${held}`);
      losses.push(ok - counted);
      lostMs.push(((ok - counted) / killedRate) * 1000);
      rows.push([String(round + 1), String(ok), String(counted), String(ok - counted), killedRate.toFixed(0), lostMs.at(-1)!.toFixed(0), (total / seconds).toFixed(0)]);
    } finally {
      await server.stop();
    }
  }
  console.log(table(['round', 'answered (probes included)', 'counted', 'lost', 'killed worker req/s', 'lost, ms of its traffic', 'req/s (whole run)'], rows));
  console.log(`\nmedian lost: ${median(losses)} of ${total}; as the killed worker's traffic: median ${median(lostMs).toFixed(0)} ms, max ${Math.max(...lostMs).toFixed(0)} ms`);
  reportEnd(failures, builtAt);
});
