// The alert rules pass `promtool check rules` and their unit tests (`promtool test rules`, real promtool), and the
// Grafana dashboard is importable and consistent: datasource and worker variables, every query on $datasource,
// every per-worker metric filtered by $worker, quantiles from summed buckets, the required panels, sane layout.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { needTool } from '../helpers/tools.js';
import {
  ALERTS_FILE,
  ALERTS_TEST_FILE,
  allPanels,
  annotationExprs,
  hasWorkerLabel,
  loadDashboard,
  loadRules,
  panelTargets,
  parseLabelValues,
  selectors,
  signalPart,
  variableQuery,
} from './dashboard.js';

const ALERTS = ['WorkerCrashLoop', 'WorkerTimeouts', 'HighErrorRatio', 'HighLatency', 'StaleExporter', 'ExporterDown', 'MetricsStoreDown'];

describe('alert rules', () => {
  const rules = loadRules();

  test('one group "promfork" with the expected alerts, each with for, a severity and templated annotations', () => {
    assert.deepEqual(
      rules.groups.map((g) => g.name),
      ['promfork'],
    );
    const group = rules.groups[0]!;
    assert.deepEqual(
      group.rules.map((r) => r.alert),
      ALERTS,
    );
    for (const r of group.rules) {
      assert.match(r.for ?? '', /^\d+[smh]$/, `${r.alert}: for`);
      assert.ok(['warning', 'critical'].includes(r.labels?.severity ?? ''), `${r.alert}: severity ${r.labels?.severity}`);
      assert.deepEqual(Object.keys(r.annotations ?? {}).sort(), ['description', 'summary'], `${r.alert}: annotations`);
      assert.match(r.annotations!.summary!, /\{\{ \$labels\.\w+ \}\}/, `${r.alert}: summary names the labels`);
      assert.match(r.annotations!.description!, /\{\{ \$labels\.job \}\}\/\{\{ \$labels\.instance \}\}/, `${r.alert}: description names the server`);
      // The value of a `== 0` alert is always 0: not worth printing.
      if (!/==\s*0\s*$/.test(r.expr)) assert.match(r.annotations!.description!, /\$value/, `${r.alert}: description gives the value`);
      // Per server: every aggregation keeps job and instance (an expression without aggregation keeps every label).
      for (const m of r.expr.matchAll(/\b(?:sum|max|min|avg|count)\s*(?:by\s*\(([^)]*)\))?\s*\(/g)) {
        const by = (m[1] ?? '').split(/,\s*/);
        assert.ok(by.includes('job') && by.includes('instance'), `${r.alert}: ${m[0]} keeps job and instance`);
      }
      // The threshold is the last comparison: the e2e test queries the signal part without it.
      assert.notEqual(signalPart(r.expr), null, `${r.alert}: the expression ends with a threshold`);
    }
    // Latency quantiles over all workers: buckets summed by le (and the server), never per worker.
    const latency = group.rules.find((r) => r.alert === 'HighLatency')!;
    assert.match(latency.expr, /histogram_quantile\(0\.99,\s*sum by \(job, instance, le\) \(rate\(gunicorn_worker_request_duration_seconds_bucket\[5m\]\)\)/);
  });

  test('promtool check rules', (t) => {
    const promtool = needTool(t, 'promtool');
    if (promtool === undefined) return;
    const r = spawnSync(promtool, ['check', 'rules', ALERTS_FILE], { encoding: 'utf8' });
    const out = `${r.stdout}${r.stderr}`;
    assert.equal(r.status, 0, out);
    assert.match(out, new RegExp(`SUCCESS: ${ALERTS.length} rules found`), out);
  });

  test('promtool test rules: every alert fires on its condition and not on healthy series', (t) => {
    const promtool = needTool(t, 'promtool');
    if (promtool === undefined) return;
    const r = spawnSync(promtool, ['test', 'rules', ALERTS_TEST_FILE], { encoding: 'utf8' });
    const out = `${r.stdout}${r.stderr}`;
    assert.equal(r.status, 0, out);
    assert.match(out, /Unit Testing: .*alerts\.test\.yml\n\s+SUCCESS\n/, out);
    assert.doesNotMatch(out, /FAILED/, out);
  });

  test('the unit tests cover every alert, firing and quiet', () => {
    const spec = YAML.parse(readFileSync(ALERTS_TEST_FILE, 'utf8')) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const cases = spec.tests.flatMap((c) => c.alert_rule_test);
    for (const name of ALERTS) {
      assert.ok(cases.some((c) => c.alertname === name && c.exp_alerts.length > 0), `${name} is tested firing`);
      assert.ok(cases.some((c) => c.alertname === name && c.exp_alerts.length === 0), `${name} is tested quiet`);
    }
  });
});

describe('Grafana dashboard', () => {
  const d = loadDashboard();
  const targets = panelTargets(d);

  test('importable: __inputs asks for a Prometheus datasource, __requires lists the panel types used', () => {
    assert.ok(d.schemaVersion >= 36 && d.schemaVersion <= 41, `schemaVersion ${d.schemaVersion}`);
    assert.equal(d.uid, 'promfork');
    assert.deepEqual(
      d.__inputs.map((i) => [i.name, i.type, i.pluginId]),
      [['DS_PROMETHEUS', 'datasource', 'prometheus']],
    );
    const required = new Set(d.__requires.map((r) => `${r.type}:${r.id}`));
    assert.ok(required.has('datasource:prometheus'));
    assert.ok(required.has('grafana:grafana'));
    for (const p of allPanels(d)) {
      if (p.type !== 'row') assert.ok(required.has(`panel:${p.type}`), `__requires lists panel type ${p.type}`);
    }
  });

  test('variables: datasource, job, instance and worker (multi, All)', () => {
    const vars = new Map(d.templating.list.map((v) => [v.name, v]));
    assert.deepEqual([...vars.keys()], ['datasource', 'job', 'instance', 'worker']);
    const ds = vars.get('datasource')!;
    assert.equal(ds.type, 'datasource');
    assert.equal(ds.query, 'prometheus');
    const worker = vars.get('worker')!;
    assert.equal(worker.type, 'query');
    assert.equal(worker.multi, true);
    assert.equal(worker.includeAll, true);
    assert.equal(worker.allValue, '.*');
    const lv = parseLabelValues(variableQuery(worker));
    assert.ok(lv, variableQuery(worker));
    assert.equal(lv[1], 'worker_id');
    assert.match(lv[0], /^gunicorn_worker_requests_total\b/);
    for (const name of ['job', 'instance', 'worker']) {
      const v = vars.get(name)!;
      assert.deepEqual(v.datasource, { type: 'prometheus', uid: '${datasource}' }, `${name}: datasource`);
      assert.ok(parseLabelValues(variableQuery(v)), `${name}: label_values query`);
    }
  });

  test('every query runs on $datasource and uses the variables', () => {
    assert.ok(targets.length >= 30, `${targets.length} queries`);
    const all = [...targets.map((t) => ({ where: t.where, expr: t.target.expr, ds: t.target.datasource ?? t.panel.datasource })), ...annotationExprs(d).map((a) => ({ where: a.where, expr: a.expr, ds: a.datasource }))];
    for (const { where, expr, ds } of all) {
      assert.deepEqual(ds, { type: 'prometheus', uid: '${datasource}' }, `${where}: datasource`);
      const sels = selectors(expr);
      assert.ok(sels.length > 0, `${where}: no metric in ${expr}`);
      for (const s of sels) {
        assert.ok(s.matchers, `${where}: ${s.metric} without a selector in ${expr}`);
        assert.ok(s.matchers.includes('job=~"$job"'), `${where}: ${s.metric} not filtered by $job`);
        assert.ok(s.matchers.includes('instance=~"$instance"'), `${where}: ${s.metric} not filtered by $instance`);
        if (hasWorkerLabel(s.metric)) assert.ok(s.matchers.includes('worker_id=~"$worker"'), `${where}: ${s.metric} not filtered by $worker`);
      }
    }
    for (const { panel, target, where } of targets) {
      assert.equal(panel.datasource?.uid, '${datasource}', `${where}: panel datasource`);
      // Range windows: $__rate_interval, or $__range for "over the selected range" tables and stats.
      for (const m of target.expr.matchAll(/\[([^\]]*)\]/g)) {
        assert.ok(['$__rate_interval', '$__range'].includes(m[1]!), `${where}: window [${m[1]}]`);
      }
      // A quantile over several series is computed from buckets summed by le first.
      for (const m of target.expr.matchAll(/histogram_quantile\(\s*([0-9.]+),\s*(\w+)(?: by \(([^)]*)\))?/g)) {
        assert.equal(m[2], 'sum', `${where}: buckets aggregated with sum`);
        assert.ok((m[3] ?? '').split(/,\s*/).includes('le'), `${where}: sum by (le, ...)`);
      }
    }
  });

  test('latency quantiles: overall sum by (le), per worker sum by (le, instance, worker_id)', () => {
    const byTitle = (t: string) => targets.filter((x) => x.panel.title === t).map((x) => x.target.expr);
    const overall = byTitle('Latency quantiles (all selected workers)');
    for (const q of ['0.5', '0.9', '0.99']) {
      assert.ok(
        overall.some((e) => e.startsWith(`histogram_quantile(${q}, sum by (le) (rate(gunicorn_worker_request_duration_seconds_bucket{`)),
        `p${q} overall`,
      );
    }
    const perWorker = byTitle('p99 latency by worker');
    assert.equal(perWorker.length, 1);
    assert.ok(perWorker[0]!.startsWith('histogram_quantile(0.99, sum by (le, instance, worker_id) (rate(gunicorn_worker_request_duration_seconds_bucket{'));
  });

  test('rows and required panels, by title', () => {
    const panels = allPanels(d);
    assert.deepEqual(
      panels.filter((p) => p.type === 'row').map((p) => p.title),
      ['Traffic', 'Latency', 'Errors', 'Workers', 'Master', 'Exporter health'],
    );
    const titles = new Set(panels.map((p) => p.title));
    for (const t of [
      'Request rate',
      'Error ratio',
      'Requests and failures per second',
      'Requests per second by worker',
      'Failed requests per second by worker',
      'Error ratio by worker',
      'Latency quantiles (all selected workers)',
      'p99 latency by worker',
      'Failures by endpoint',
      'Errors by type',
      'Errors by endpoint and type (selected range)',
      'Memory (RSS) by worker',
      'CPU by worker',
      'Uptime by worker',
      'Worker state',
      'Workers now',
      'Worker restarts by reason',
      'Signals received',
      'Scrape duration',
      'Snapshot age by worker',
      'Metrics store up',
    ]) {
      assert.ok(titles.has(t), `panel "${t}"`);
    }
    const metricsUsed = new Set(targets.flatMap((t) => selectors(t.target.expr).map((s) => s.metric)));
    for (const m of [
      'gunicorn_worker_requests_total',
      'gunicorn_worker_request_duration_seconds_bucket',
      'gunicorn_worker_failed_requests_total',
      'gunicorn_worker_error_handling_total',
      'gunicorn_worker_memory_bytes',
      'gunicorn_worker_cpu_percent',
      'gunicorn_worker_uptime_seconds',
      'gunicorn_worker_state',
      'gunicorn_master_worker_restarts_total',
      'gunicorn_master_worker_restart_reasons_total',
      'gunicorn_master_signals_total',
      'promfork_worker_snapshot_age_seconds',
      'promfork_scrape_duration_seconds_bucket',
      'promfork_store_up',
      'promfork_store_errors_total',
    ]) {
      assert.ok(metricsUsed.has(m), `a panel shows ${m}`);
    }
  });

  test('unique panel ids and refIds; the grid is 24 wide and panels do not overlap', () => {
    const panels = allPanels(d);
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'duplicate panel id');
    for (const p of panels) {
      const refs = (p.targets ?? []).map((t) => t.refId);
      assert.equal(new Set(refs).size, refs.length, `panel ${p.id}: duplicate refId`);
      const { h, w, x, y } = p.gridPos;
      for (const v of [h, w, x, y]) assert.ok(Number.isInteger(v) && v >= 0, `panel ${p.id}: gridPos ${JSON.stringify(p.gridPos)}`);
      assert.ok(w >= 1 && h >= 1 && x + w <= 24, `panel ${p.id}: gridPos ${JSON.stringify(p.gridPos)}`);
      if (p.type === 'row') assert.deepEqual([w, h, x], [24, 1, 0], `row ${p.id}`);
      else assert.ok((p.targets ?? []).length > 0, `panel ${p.id} has queries`);
    }
    for (let i = 0; i < panels.length; i++) {
      for (let j = i + 1; j < panels.length; j++) {
        const a = panels[i]!.gridPos;
        const b = panels[j]!.gridPos;
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        assert.ok(!overlap, `panels ${panels[i]!.id} and ${panels[j]!.id} overlap`);
      }
    }
    // Rows come in order and each panel sits below its row.
    let rowY = -1;
    for (const p of panels) {
      if (p.type === 'row') {
        assert.ok(p.gridPos.y > rowY, `row ${p.id} after the previous one`);
        rowY = p.gridPos.y;
      } else assert.ok(p.gridPos.y > rowY, `panel ${p.id} below its row`);
    }
  });
});
