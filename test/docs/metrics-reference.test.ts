// docs/metrics.md names every metric promfork defines and exposes, with its real type and labels:
// the tables are compared with the metric names defined in src/ and with the families of a real /metrics
// (the primary's, after requests, failures and a reload) and of a real `promfork exporter` sidecar.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { APP, PromforkProcess, ROOT, request, startServer } from '../helpers/server.js';

interface Documented {
  type: string;
  labels: string[];
}

const DOC = readFileSync(path.join(ROOT, 'docs', 'metrics.md'), 'utf8');

/** The rows `| \`name\` | type | labels | meaning |` of the reference tables. */
function documentedMetrics(): Map<string, Documented> {
  const out = new Map<string, Documented>();
  for (const line of DOC.split('\n')) {
    const m = /^\| `([a-z_:][a-z0-9_:]*)` \| (counter|gauge|histogram|summary) \| ([^|]+) \|/.exec(line);
    if (!m) continue;
    assert.ok(!out.has(m[1]!), `${m[1]} is documented twice`);
    const labels = m[3]!.trim() === 'none' ? [] : [...m[3]!.matchAll(/`([a-z_]+)`/g)].map((x) => x[1]!);
    out.set(m[1]!, { type: m[2]!, labels: labels.sort() });
  }
  return out;
}

/** Metric names defined in src/: `name: \`${ns}_...\`` (namespace gunicorn) and `name: 'promfork_...'`. */
function sourceMetricNames(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.ts')) {
        const text = readFileSync(file, 'utf8');
        // `name: ...` of a prom-client metric, or a property naming one (the worker's plain-number metrics).
        for (const m of text.matchAll(/(?:\bname:|^\s+[a-z]\w*:)\s*(['"`])(\$\{ns\}_|promfork_)([a-z0-9_]+)\1/gm)) {
          names.add(`${m[2] === 'promfork_' ? 'promfork_' : 'gunicorn_'}${m[3]}`);
        }
      }
    }
  };
  walk(path.join(ROOT, 'src'));
  return names;
}

interface Family {
  type: string;
  labels: Set<string>;
}

/** Families of an exposition: type and the label names seen on their samples (`le`, `quantile` excluded). */
function families(text: string): Map<string, Family> {
  const out = new Map<string, Family>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) {
      out.set(t[1]!, { type: t[2]!, labels: new Set() });
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line)!;
    const family = out.get(s[1]!) ?? out.get(s[1]!.replace(/_(bucket|sum|count)$/, ''));
    assert.ok(family, `sample without a family: ${line}`);
    for (const lm of (s[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) {
      if (lm[1] !== 'le' && lm[1] !== 'quantile') family.labels.add(lm[1]!);
    }
  }
  return out;
}

function checkExposed(exposed: Map<string, Family>, documented: Map<string, Documented>, where: string): void {
  for (const [name, f] of exposed) {
    const doc = documented.get(name);
    assert.ok(doc, `${where}: ${name} is exposed but not documented in docs/metrics.md`);
    assert.equal(doc.type, f.type, `${where}: type of ${name}`);
    // A family with no sample yet shows no labels; one with samples shows exactly the documented ones.
    if (f.labels.size > 0) assert.deepEqual([...f.labels].sort(), doc.labels, `${where}: labels of ${name}`);
  }
}

async function scrapeText(url: string): Promise<string> {
  const r = await request(url);
  assert.equal(r.status, 200, r.body);
  return r.body;
}

async function until<T>(what: string, fn: () => Promise<T | null>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('every metric defined in src/ is documented, and every documented metric is defined', () => {
  const documented = [...documentedMetrics().keys()].sort();
  const defined = [...sourceMetricNames()].sort();
  // The scan itself works: the metrics of the Python exporter's API reference and the exporter's own are found.
  for (const name of ['gunicorn_worker_requests_total', 'gunicorn_master_signals_total', 'promfork_store_up', 'promfork_exporter_store_up']) {
    assert.ok(defined.includes(name), `source scan missed ${name}`);
  }
  assert.deepEqual(documented, defined);
});

test('every metric name mentioned in docs/metrics.md exists', () => {
  const documented = documentedMetrics();
  for (const m of DOC.matchAll(/\b(?:gunicorn|promfork)_[a-z0-9_]+/g)) {
    const name = m[0];
    const base = name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(documented.has(name) || documented.has(base), `docs/metrics.md mentions ${name}, which is not in its tables`);
  }
});

test('every metric the dashboard and the alert rules query is documented', () => {
  const documented = documentedMetrics();
  for (const rel of ['dashboards/promfork.json', 'dashboards/alerts.yml']) {
    const text = readFileSync(path.join(ROOT, rel), 'utf8');
    const used = new Set([...text.matchAll(/\b(?:gunicorn|promfork)_[a-z0-9_]*[a-z0-9]/g)].map((m) => m[0]));
    assert.ok(used.size > 5, `${rel} queries metrics`);
    for (const name of used) {
      const base = name.replace(/_(bucket|sum|count)$/, '');
      assert.ok(documented.has(name) || documented.has(base), `${rel} uses ${name}, which docs/metrics.md does not document`);
    }
  }
});

test('the families of a real /metrics and of a real sidecar are documented with their types and labels', async () => {
  const documented = documentedMetrics();
  const { server, url, metricsUrl, multiprocDir } = await startServer([APP, '-w', '2']);

  for (const p of ['/', '/throw', '/reject', '/status?code=503']) await request(`${url}${p}`);
  // A reload: a signal, and restarts with a reason.
  const from = server.output.length;
  server.signal('SIGHUP');
  await server.waitForCount(/Worker exiting/, 2, { from });
  const primary = await until('the reload restarts in /metrics', async () => {
    const text = await scrapeText(metricsUrl);
    return text.includes('_master_worker_restart_reasons_total{reason="reload"} 2') ? text : null;
  });
  const exposed = families(primary);
  for (const name of ['gunicorn_worker_error_handling_total', 'gunicorn_master_signals_total', 'gunicorn_worker_state']) {
    assert.ok((exposed.get(name)?.labels.size ?? 0) > 0, `${name} has samples`);
  }
  checkExposed(exposed, documented, 'primary');

  const sidecar = new PromforkProcess([
    'exporter',
    '--multiproc-dir', path.join(multiprocDir, 'store'),
    '--metrics-port', '0',
    '--metrics-bind', '127.0.0.1',
  ]);
  const m = await sidecar.waitFor(/Serving metrics on (http:\/\/\S+\/metrics)/);
  // The primary writes its own snapshot for the sidecar every 5 s.
  const side = await until('the primary snapshot in the sidecar', async () => {
    const text = await scrapeText(m[1]!);
    return text.includes('gunicorn_master_signals_total{') && text.includes('promfork_exporter_snapshot_age_seconds{') ? text : null;
  });
  const sideFamilies = families(side);
  for (const name of ['promfork_exporter_store_up', 'promfork_exporter_scrape_duration_seconds', 'promfork_exporter_store_problems_total']) {
    assert.ok(sideFamilies.has(name), `sidecar exposes ${name}`);
  }
  checkExposed(sideFamilies, documented, 'sidecar');
  await sidecar.stop();
});
