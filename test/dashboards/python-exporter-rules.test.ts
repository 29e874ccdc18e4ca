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
