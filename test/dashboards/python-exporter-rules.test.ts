// The recording rules for dashboards written for the Python Gunicorn Prometheus Exporter
// (dashboards/python-exporter.rules.yml): real promtool checks them and runs their unit tests
// (test/dashboards/python-exporter-rules.test.yml), every rule is exercised there, no rule records a name promfork
// emits itself (it would double every sum), and docs/migration.md explains each one.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { needTool } from '../helpers/tools.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const RULES = path.join(ROOT, 'dashboards', 'python-exporter.rules.yml');
const UNIT = path.join(ROOT, 'test', 'dashboards', 'python-exporter-rules.test.yml');

const rules = (YAML.parse(readFileSync(RULES, 'utf8')) as { groups: { rules: { record: string; expr: string }[] }[] }).groups
  .flatMap((g) => g.rules);

test('promtool check rules and promtool test rules pass', (t) => {
  const promtool = needTool(t, 'promtool');
  if (promtool === undefined) return;
  for (const args of [['check', 'rules', RULES], ['test', 'rules', UNIT]]) {
    const r: SpawnSyncReturns<string> = spawnSync(promtool, args, { encoding: 'utf8', cwd: ROOT });
    assert.equal(r.status, 0, `promtool ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout + r.stderr, /SUCCESS/);
  }
});

test('every recorded name is checked by the unit tests and explained in docs/migration.md', () => {
  const unit = readFileSync(UNIT, 'utf8');
  const migration = readFileSync(path.join(ROOT, 'docs', 'migration.md'), 'utf8');
  assert.deepEqual(
    [...new Set(rules.map((r) => r.record))],
    ['gunicorn_master_worker_restart_total', 'gunicorn_worker_restart_total', 'gunicorn_worker_restart_count_total',
      'gunicorn_sidecar_redis_connected', 'gunicorn_sidecar_uptime_seconds'],
  );
  for (const { record } of rules) {
    assert.match(unit, new RegExp(`labels: '${record}\\{`), `${record} has expected samples in ${path.basename(UNIT)}`);
    assert.ok(migration.includes(`\`${record}\``), `docs/migration.md names ${record}`);
  }
});

test('no rule records a name promfork emits itself', () => {
  const metrics = readFileSync(path.join(ROOT, 'docs', 'metrics.md'), 'utf8');
  const emitted = new Set([...metrics.matchAll(/^\| `([a-z_]+)` \| (?:counter|gauge|histogram|summary) \|/gm)].map((m) => m[1]!));
  assert.ok(emitted.has('gunicorn_worker_requests_total') && emitted.has('gunicorn_master_signals_total'), 'metrics.md was read');
  for (const { record } of rules) assert.ok(!emitted.has(record), `${record} is also a promfork metric`);
});

// Every family the Python exporter 0.2.4 declares (its metrics.py, and docker/sidecar.py), as exposed in the
// Prometheus text format (prometheus_client appends _total to counters): each has its row in the migration guide.
const PYTHON_EXPORTER_FAMILIES = [
  'gunicorn_worker_requests_total', 'gunicorn_worker_request_duration_seconds', 'gunicorn_worker_memory_bytes',
  'gunicorn_worker_cpu_percent', 'gunicorn_worker_uptime_seconds', 'gunicorn_worker_failed_requests_total',
  'gunicorn_worker_error_handling_total', 'gunicorn_worker_state', 'gunicorn_worker_request_size_bytes',
  'gunicorn_worker_response_size_bytes', 'gunicorn_worker_restart_total', 'gunicorn_worker_restart_count_total',
  'gunicorn_master_worker_restart_total', 'gunicorn_master_worker_restart_count_total',
  'gunicorn_sidecar_uptime_seconds', 'gunicorn_sidecar_multiproc_dir_size_bytes', 'gunicorn_sidecar_multiproc_files_count',
  'gunicorn_sidecar_redis_connected',
];

test("docs/migration.md has a row for every family the Python exporter 0.2.4 emits", () => {
  const migration = readFileSync(path.join(ROOT, 'docs', 'migration.md'), 'utf8');
  const table = migration.slice(migration.indexOf('## Metrics, name by name'));
  const firstCells = table.split('\n').filter((l) => l.startsWith('| `')).map((l) => l.split(' | ')[0]!);
  for (const name of PYTHON_EXPORTER_FAMILIES) {
    assert.ok(firstCells.some((cell) => cell.includes(`\`${name}\``)), `a row for ${name}`);
  }
});
