// End to end against a real Prometheus (the Debian `prometheus` package), scraping a real promfork every second
// on loopback, with dashboards/alerts.yml loaded as its rule file:
// - the counters are usable: increase()/rate() over the run equals the number of requests sent;
// - every expression of the dashboard (panels, annotations, variables) returns data from the query API;
// - every alert expression returns data: the conditions are provoked for real where a short test can (errors,
//   slow requests, a worker timeout, a crash loop of SIGKILLed workers, a removed store, a stopped server), and
//   Prometheus's own rule evaluation reports those alerts pending; the rest is checked on its signal part.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { APP, request, startServer } from '../helpers/server.js';
import { ALERTS_FILE, annotationExprs, loadDashboard, loadRules, panelTargets, parseLabelValues, signalPart, variableQuery } from './dashboard.js';
import { freePort } from '../helpers/ports.js';
import { until } from '../helpers/poll.js';
import { needTool } from '../helpers/tools.js';


// ------------------------------------------------------------------ a Prometheus server, stopped by pid

interface Sample {
  metric: Record<string, string>;
  value?: [number, string];
  values?: [number, string][];
}

class PrometheusServer {
  log = '';
  readonly url: string;
  private readonly proc: ChildProcess;
  private readonly exited: Promise<void>;
  private hasExited = false;

  constructor(
    prometheus: string,
    readonly port: number,
    configFile: string,
    dataDir: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.proc = spawn(
      prometheus,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${dataDir}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const onData = (c: Buffer) => {
      this.log = (this.log + c.toString()).slice(-20_000);
    };
    this.proc.stdout!.on('data', onData);
    this.proc.stderr!.on('data', onData);
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', () => {
        this.hasExited = true;
        resolve();
      });
      this.proc.once('error', (err) => {
        this.log += `\n${err.message}`;
        this.hasExited = true;
        resolve();
      });
    });
    servers.add(this);
  }

  get pid(): number {
    return this.proc.pid ?? 0;
  }

  /** Resolve when /-/ready answers 200; throw if Prometheus exits first or after the deadline. */
  async ready(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.hasExited) throw new Error(`prometheus exited before it was ready:\n${this.log}`);
      const ok = await request(`${this.url}/-/ready`, { timeoutMs: 1000 }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`prometheus not ready within ${timeoutMs} ms:\n${this.log}`);
      await Promise.race([pause(50), this.exited]);
    }
  }

  async stop(): Promise<void> {
    if (!this.hasExited && this.pid) {
      killQuietly(this.pid, 'SIGTERM');
      const timer = setTimeout(() => killQuietly(this.pid, 'SIGKILL'), 5000);
      await this.exited;
      clearTimeout(timer);
    }
    servers.delete(this);
  }

  killNow(): void {
    if (!this.hasExited && this.pid) killQuietly(this.pid, 'SIGKILL');
  }

  private async api(pathAndQuery: string, form?: Record<string, string>): Promise<unknown> {
    const r = await request(`${this.url}${pathAndQuery}`, {
      method: form ? 'POST' : 'GET',
      body: form ? new URLSearchParams(form).toString() : undefined,
      headers: form ? { 'content-type': 'application/x-www-form-urlencoded' } : undefined,
      timeoutMs: 10_000,
    });
    const body = JSON.parse(r.body) as { status: string; data: unknown; error?: string };
    if (body.status !== 'success') throw new Error(`${pathAndQuery} ${JSON.stringify(form)}: ${r.status} ${body.error}`);
    return body.data;
  }

  /** An instant query at `time` (unix seconds), or now. */
  async query(expr: string, time?: number): Promise<{ resultType: string; result: Sample[] }> {
    const form: Record<string, string> = { query: expr };
    if (time !== undefined) form.time = time.toFixed(3);
    return (await this.api('/api/v1/query', form)) as { resultType: string; result: Sample[] };
  }

  async targets(): Promise<{ health: string; labels: Record<string, string>; lastError: string }[]> {
    return ((await this.api('/api/v1/targets')) as { activeTargets: { health: string; labels: Record<string, string>; lastError: string }[] })
      .activeTargets;
  }

  async rules(): Promise<{ name: string; health: string; lastError?: string; state?: string }[]> {
    const data = (await this.api('/api/v1/rules')) as { groups: { rules: { name: string; health: string; lastError?: string; state?: string }[] }[] };
    return data.groups.flatMap((g) => g.rules);
  }
}

const servers = new Set<PrometheusServer>();
const tempDirs: string[] = [];
after(async () => {
  await Promise.all([...servers].map((s) => s.stop()));
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});
process.on('exit', () => {
  for (const s of servers) s.killNow();
});

function killQuietly(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // not running
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}


async function startPrometheus(prometheus: string, metricsTarget: string, dir: string): Promise<PrometheusServer> {
  const configFile = path.join(dir, 'prometheus.yml');
  writeFileSync(
    configFile,
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'rule_files:',
      `  - ${JSON.stringify(ALERTS_FILE)}`,
      'scrape_configs:',
      '  - job_name: promfork',
      '    static_configs:',
      `      - targets: [${JSON.stringify(metricsTarget)}]`,
      '',
    ].join('\n'),
  );
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const prom = new PrometheusServer(prometheus, await freePort(), configFile, path.join(dir, `data-${attempt}`));
    try {
      await prom.ready();
      return prom;
    } catch (err) {
      lastError = err; // most likely the port was taken between probing and binding it: try another
      await prom.stop();
    }
  }
  throw lastError;
}

// ------------------------------------------------------------------ helpers for the checks

const num = (v: string) => Number(v);

function hasFiniteValue(r: { resultType: string; result: Sample[] }): boolean {
  if (r.resultType === 'scalar') return Number.isFinite(num((r.result as unknown as [number, string])[1]));
  return r.result.some((s) => (s.value ? Number.isFinite(num(s.value[1])) : (s.values ?? []).some((v) => Number.isFinite(num(v[1])))));
}

function describeResult(r: { resultType: string; result: Sample[] }): string {
  return JSON.stringify(r.result).slice(0, 600);
}

/** N requests in a fixed mix, spread evenly over the load (deterministic order), one path each. */
function requestPlan(mix: [string, number][]): string[] {
  const keyed: { key: number; path: string }[] = [];
  for (const [p, count] of mix) for (let j = 0; j < count; j++) keyed.push({ key: (j + 0.5) / count, path: p });
  keyed.sort((a, b) => a.key - b.key);
  return keyed.map((k) => k.path);
}

/** Send each planned request at start + i / rate (paced), at most `concurrency` in flight; resolve with the statuses. */
async function paced(base: string, plan: string[], perSecond: number, concurrency: number): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  const start = Date.now();
  let next = 0;
  const loop = async () => {
    for (;;) {
      const i = next++;
      if (i >= plan.length) return;
      const due = start + (i * 1000) / perSecond;
      if (due > Date.now()) await pause(due - Date.now());
      const r = await request(`${base}${plan[i]}`, { timeoutMs: 20_000 });
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return statuses;
}

// ------------------------------------------------------------------ the test

// The request mix of the load phase: errors (a throw: error_type Error; a 503: http_503) and slow requests
// (2.5% of them take 1.5 s, so the p99 over all workers is above the HighLatency threshold of 1 s).
const NORMAL = 400;
const THROWS = 30;
const STATUS_503 = 30;
const SLOW = 12;
const TOTAL = NORMAL + THROWS + STATUS_503 + SLOW;
const KILLS = 4; // SIGKILLed workers: WorkerCrashLoop fires above 3 in 10 minutes

test('a real Prometheus: exact counters, every dashboard query and every alert expression return data', { timeout: 120_000 }, async (t) => {
  const prometheus = needTool(t, 'prometheus');
  if (prometheus === undefined) return;
  const t0 = Date.now();
  const phase = (name: string) => t.diagnostic(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${name}`);

  // --timeout 3: a worker blocked in /cpu is killed within seconds (WorkerTimeouts); heartbeats every 0.75 s keep
  // the others well clear of it on a busy machine.
  const { server, url, metricsUrl, multiprocDir } = await startServer([APP, '-w', '2', '--timeout', '3']);
  const metricsTarget = new URL(metricsUrl).host;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-prom-'));
  tempDirs.push(dir, multiprocDir);
  const prom = await startPrometheus(prometheus, metricsTarget, dir);
  phase(`promfork (pid ${server.pid}) and prometheus (pid ${prom.pid}, ${prom.url}) ready`);

  // The target is up and the zero series of both seats are stored before any request: the baseline of the run.
  await until('the promfork target up', async () => ((await prom.targets()).some((x) => x.labels.job === 'promfork' && x.health === 'up') ? true : undefined));
  await until('both seats at 0 in Prometheus', async () => {
    const r = await prom.query('gunicorn_worker_requests_total{job="promfork"}');
    return r.result.length === 2 && r.result.every((s) => s.value![1] === '0') ? true : undefined;
  });
  phase('target up, zero baseline stored');

  // ---- load: an exact number of requests, paced at 100/s
  const plan = requestPlan([
    ['/', NORMAL],
    ['/throw', THROWS],
    ['/status?code=503', STATUS_503],
    ['/slow?ms=1500', SLOW],
  ]);
  assert.equal(plan.length, TOTAL);
  assert.doesNotMatch(server.output, /WORKER TIMEOUT/, 'no worker timed out before the load');
  const loadStart = Date.now();
  const statuses = await paced(url, plan, 100, 24);
  const loadSeconds = (Date.now() - loadStart) / 1000;
  assert.deepEqual(
    [...statuses].sort((a, b) => a[0] - b[0]),
    [
      [200, NORMAL + SLOW],
      [500, THROWS],
      [503, STATUS_503],
    ],
  );
  phase(`${TOTAL} requests sent in ${loadSeconds.toFixed(1)} s`);
  // A spurious timeout (a worker stalled for 3 s) would SIGKILL a worker and lose its unflushed counts.
  assert.doesNotMatch(server.output, /WORKER TIMEOUT/, 'no worker timed out during the load');

  // ---- rate() matches the requests sent.
  // The last sample T of the run (both seats are scraped together) has the total; the window [T-W, T] starts
  // before the first sample, which is 0 (the series exist from boot, scraped before any request). Then increase()
  // extrapolates neither at the start (a counter starting at 0 is not extended below 0) nor at the end (a sample
  // sits exactly at T): it is last - first = the requests counted, exactly.
  const T = await until(
    `a sample with all ${TOTAL} requests`,
    async () => {
      const r = await prom.query('gunicorn_worker_requests_total{job="promfork"}[30s]');
      if (r.result.length !== 2) return undefined;
      const lasts = r.result.map((s) => s.values![s.values!.length - 1]!);
      if (lasts[0]![0] !== lasts[1]![0]) return undefined;
      return lasts.reduce((a, v) => a + num(v[1]), 0) === TOTAL ? lasts[0]![0] : undefined;
    },
    10_000,
  );
  const history = await prom.query('gunicorn_worker_requests_total{job="promfork"}[10m]', T);
  const tFirst = Math.min(...history.result.map((s) => s.values![0]![0]));
  for (const s of history.result) assert.equal(s.values![0]![1], '0', `first sample of ${s.metric.worker_id}`);
  const runWindow = Math.ceil(T - tFirst) + 2;
  const inc = await prom.query(`sum(increase(gunicorn_worker_requests_total{job="promfork"}[${runWindow}s]))`, T);
  assert.equal(num(inc.result[0]!.value![1]), TOTAL, `increase over [${runWindow}s] at the run's last sample`);
  const rate = await prom.query(`sum(rate(gunicorn_worker_requests_total{job="promfork"}[${runWindow}s]))`, T);
  const fromRate = num(rate.result[0]!.value![1]) * runWindow;
  assert.ok(Math.abs(fromRate - TOTAL) <= 0.05 * TOTAL, `rate x ${runWindow} s = ${fromRate}, sent ${TOTAL}`);
  phase(`increase() = ${num(inc.result[0]!.value![1])}, rate() x window = ${fromRate.toFixed(2)} (sent ${TOTAL})`);

  // ---- master events: a signal, a crash loop (SIGKILLed workers), a worker timeout
  let from = server.output.length;
  server.signal('SIGUSR1');
  await server.waitFor(/Handling signal: usr1/, { from });
  for (let killed = 0; killed < KILLS; ) {
    from = server.output.length;
    const pids = server.workerPids();
    assert.equal(pids.length, 2, `worker pids ${pids.join(' ')}`);
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    killed += pids.length;
    await server.waitForCount(/Worker booted \(pid:\d+/, pids.length, { from });
  }
  phase(`${KILLS} workers SIGKILLed and replaced`);
  from = server.output.length;
  // Blocks one worker's event loop for 10 s: no heartbeat, so the arbiter aborts it after 3 s and kills it a tick later.
  const blocked = request(`${url}/cpu?ms=10000`, { timeoutMs: 20_000 }).then(
    (r) => `status ${r.status}`,
    (err: Error) => err.message,
  );
  await server.waitFor(/WORKER TIMEOUT \(pid:\d+\)/, { from });
  await server.waitForCount(/Worker booted \(pid:\d+/, 1, { from });
  assert.doesNotMatch(await blocked, /^status 200/, 'the blocked request did not complete');
  phase('a worker timed out and was replaced');

  await until(
    'Prometheus to see the restarts, the signal and two running workers with their gauges',
    async () => {
      const [reasons, usr1, running, memory] = await Promise.all([
        prom.query('sum by (reason) (gunicorn_master_worker_restart_reasons_total{job="promfork"})'),
        prom.query('gunicorn_master_signals_total{job="promfork", signal="usr1"}'),
        prom.query('count(gunicorn_worker_state{job="promfork", state="running"})'),
        prom.query('count(gunicorn_worker_memory_bytes{job="promfork"})'),
      ]);
      // Every reason's series exists from the start at 0: only the two provoked ones count.
      const byReason = Object.fromEntries(
        reasons.result.map((s) => [s.metric.reason, num(s.value![1])]).filter(([, n]) => n !== 0),
      );
      const ok =
        byReason.killed === KILLS &&
        byReason.timeout === 1 &&
        Object.keys(byReason).length === 2 &&
        num(usr1.result[0]?.value?.[1] ?? '0') === 1 &&
        num(running.result[0]?.value?.[1] ?? '0') === 2 &&
        num(memory.result[0]?.value?.[1] ?? '0') === 2;
      return ok ? true : undefined;
    },
    15_000,
  );
  // Every query below is evaluated at one instant, so what happens after it (the store and the server going
  // down) does not change their results. Subqueries (`[15m:]`) sample at whole seconds (the evaluation interval):
  // the instant must be past the next whole second after the samples just seen, or the last step misses them.
  const seen = Date.now();
  await pause(Math.ceil(seen / 1000) * 1000 + 50 - seen);
  const tEval = Date.now() / 1000;
  const window = `${Math.ceil(tEval - tFirst) + 2}s`; // covers the whole run
  phase(`evaluation time fixed; window ${window}`);

  // Provoke MetricsStoreDown now: the primary writes its own snapshot every 5 s, into a directory that is gone.
  rmSync(path.join(multiprocDir, 'store'), { recursive: true, force: true });

  // ---- every dashboard expression returns data
  const dashboard = loadDashboard();
  const grafana = (expr: string) => {
    const out = expr
      .replaceAll('$__rate_interval', window)
      .replaceAll('$__range', window)
      .replaceAll('$__interval', '1s')
      .replaceAll('$job', 'promfork')
      .replaceAll('$instance', '.*')
      .replaceAll('$worker', '.*');
    assert.doesNotMatch(out, /\$/, `a variable left in ${out}`);
    return out;
  };
  const exprs = [...panelTargets(dashboard).map((x) => ({ where: x.where, expr: x.target.expr })), ...annotationExprs(dashboard)];
  assert.ok(exprs.length >= 30);
  const empty: string[] = [];
  await Promise.all(
    exprs.map(async ({ where, expr }) => {
      const r = await prom.query(grafana(expr), tEval);
      if (!hasFiniteValue(r)) empty.push(`${where}: ${grafana(expr)} -> ${describeResult(r)}`);
    }),
  );
  assert.deepEqual(empty, [], 'dashboard expressions without data');
  // The variables' label_values(selector, label), as Grafana resolves them.
  const values: Record<string, string[]> = {};
  for (const v of dashboard.templating.list) {
    const lv = parseLabelValues(variableQuery(v));
    if (!lv) continue;
    const r = await prom.query(`count by (${lv[1]}) (${grafana(lv[0])})`, tEval);
    values[v.name] = r.result.map((s) => s.metric[lv[1]]!).sort();
  }
  assert.deepEqual(values, { job: ['promfork'], instance: [metricsTarget], worker: ['worker_0', 'worker_1'] });
  phase(`${exprs.length} dashboard expressions and 3 variables return data`);

  // ---- every alert expression returns data
  const rules = loadRules().groups.flatMap((g) => g.rules);
  // Provoked above for real: the whole expression (threshold included) returns data at tEval.
  const provoked = new Map<string, [number, number]>([
    ['WorkerCrashLoop', [KILLS, KILLS + 0.5]], // 4 killed, a little end extrapolation at most
    ['WorkerTimeouts', [1, 1.5]],
    ['HighErrorRatio', [0.05, 60 / TOTAL + 0.05]],
    ['HighLatency', [1, 2.5]], // the 1.5 s requests are in the (1, 2.5] bucket
  ]);
  // Provoked after tEval (below): MetricsStoreDown (store directory removed) and ExporterDown (server stopped).
  // Not provoked: StaleExporter needs a worker served from a snapshot over 30 s old without being timed out,
  // too long for this test. For these three the signal part (the expression without its threshold) must return
  // data at tEval.
  for (const rule of rules) {
    const range = provoked.get(rule.alert);
    const expr = range ? rule.expr : signalPart(rule.expr);
    assert.ok(expr, `${rule.alert}: signal part of ${rule.expr}`);
    const r = await prom.query(expr, tEval);
    assert.ok(hasFiniteValue(r), `${rule.alert}: ${expr} -> ${describeResult(r)}`);
    t.diagnostic(`${rule.alert}${range ? '' : ' (signal part)'}: ${r.result.map((s) => `${s.metric.worker_id ?? s.metric.instance}=${s.value![1]}`).join(' ')}`);
    if (range) {
      for (const s of r.result) {
        const v = num(s.value![1]);
        assert.ok(v > range[0] - 1e-9 && v <= range[1], `${rule.alert} = ${v}, expected in [${range[0]}, ${range[1]}]`);
        assert.equal(s.metric.job, 'promfork');
      }
    }
  }
  assert.deepEqual(
    rules.map((r) => r.alert).filter((a) => !provoked.has(a)),
    ['StaleExporter', 'ExporterDown', 'MetricsStoreDown'],
  );
  // Prometheus evaluates the rule file itself: no rule errors, and the provoked alerts are pending (their `for`
  // is longer than this test) or firing.
  await until('the provoked alerts pending in Prometheus', async () => {
    const live = await prom.rules();
    for (const r of live) assert.equal(r.health, 'ok', `${r.name}: ${r.lastError}`);
    const active = live.filter((r) => r.state === 'pending' || r.state === 'firing').map((r) => r.name);
    return [...provoked.keys()].every((a) => active.includes(a)) ? true : undefined;
  });
  phase('alert expressions return data; the provoked alerts are pending');

  // ---- the store and the server go down: the whole expressions of MetricsStoreDown and ExporterDown fire
  const storeDown = rules.find((r) => r.alert === 'MetricsStoreDown')!.expr;
  const down = await until('MetricsStoreDown data', async () => {
    const r = await prom.query(storeDown);
    return r.result.length > 0 ? r : undefined;
  });
  assert.deepEqual(
    down.result.map((s) => [s.metric.job, s.metric.store, s.value![1]]),
    [['promfork', 'directory', '0']],
  );
  await server.stop();
  const exporterDown = rules.find((r) => r.alert === 'ExporterDown')!.expr;
  const up = await until('ExporterDown data', async () => {
    const r = await prom.query(exporterDown);
    return r.result.length > 0 ? r : undefined;
  });
  assert.deepEqual(
    up.result.map((s) => [s.metric.job, s.metric.instance, s.value![1]]),
    [['promfork', metricsTarget, '0']],
  );
  phase('store removed: MetricsStoreDown has data; server stopped: ExporterDown has data');
  await prom.stop();
});
