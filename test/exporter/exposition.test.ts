import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import client from 'prom-client';
import {
  canonicalFloat,
  formatOpenMetrics,
  formatPrometheus,
  negotiate,
  OPENMETRICS_CONTENT_TYPE,
  PROMETHEUS_CONTENT_TYPE,
} from '../../src/exporter/exposition.js';
import { mergeFamilies } from '../../src/exporter/merge.js';
import type { MetricFamily } from '../../src/store/snapshot.js';
import { needTool } from '../helpers/tools.js';

/** A registry with every kind of line we write: labels, escapes, integer and float buckets, odd values. */
async function sampleRegistry(): Promise<client.Registry> {
  const registry = new client.Registry();
  // Registered in name order: prom-client prints in registration order, the merge sorts by name.
  const requests = new client.Counter({
    name: 'app_requests_total',
    help: 'Requests, by "method" and path.\nSecond line with a \\ backslash.',
    labelNames: ['method', 'path'],
    registers: [registry],
  });
  requests.inc({ method: 'GET', path: '/' }, 3);
  requests.inc({ path: '/users/:id', method: 'POST' });
  requests.inc({ method: 'GET', path: 'C:\\dir\n"quoted"' }, 2);
  new client.Counter({ name: 'app_restarts_total', help: 'Unlabelled counter.', registers: [registry] }).inc(0.5);
  const temperature = new client.Gauge({
    name: 'app_temperature_celsius',
    help: 'A gauge.',
    labelNames: ['room'],
    registers: [registry],
  });
  temperature.set({ room: 'a' }, -3.25);
  temperature.set({ room: 'b' }, 1e21);
  temperature.set({ room: 'c' }, 1.5e-7);
  temperature.set({ room: 'd' }, 0.1 + 0.2);
  temperature.set({ room: 'e' }, Infinity);
  temperature.set({ room: 'f' }, -Infinity);
  new client.Gauge({ name: 'app_up', help: 'Unlabelled gauge.', registers: [registry] }).set(1);
  const duration = new client.Histogram({
    name: 'http_request_duration_seconds',
    help: 'Durations.',
    labelNames: ['method', 'code'],
    buckets: [0.005, 0.1, 1, 2.5, 10],
    registers: [registry],
  });
  duration.observe({ method: 'GET', code: '200' }, 0.05);
  duration.observe({ method: 'GET', code: '200' }, 3);
  duration.observe({ code: '500', method: 'POST' }, 0.001);
  new client.Histogram({ name: 'idle_seconds', help: 'No observation: header only.', labelNames: ['x'], registers: [registry] });
  return registry;
}

describe('formatPrometheus', () => {
  it('is byte-identical to prom-client registry.metrics() after mergeFamilies([json])', async () => {
    const registry = await sampleRegistry();
    const json = (await registry.getMetricsAsJSON()) as unknown as MetricFamily[];
    const { families, conflicts } = mergeFamilies([json]);
    assert.deepEqual(conflicts, []);
    assert.equal(formatPrometheus(families), await registry.metrics());
  });

  it('writes the exact text for a small set', () => {
    const families: MetricFamily[] = [
      { name: 'a_total', help: 'back\\slash\nnewline "kept"', type: 'counter', aggregator: 'sum', values: [{ value: 2, labels: { p: 'x"y\\z\nw' } }] },
      {
        name: 'g', help: 'g', type: 'gauge', aggregator: 'sum', values: [
          { value: NaN, labels: { k: 'nan' } },
          { value: null as unknown as number, labels: { k: 'null' } },
          { value: 0.1, labels: { k: 3 } },
        ],
      },
    ];
    assert.equal(formatPrometheus(families), [
      '# HELP a_total back\\\\slash\\nnewline "kept"',
      '# TYPE a_total counter',
      'a_total{p="x\\"y\\\\z\\nw"} 2',
      '',
      '# HELP g g',
      '# TYPE g gauge',
      'g{k="nan"} NaN',
      'g{k="null"} NaN',
      'g{k="3"} 0.1',
      '',
    ].join('\n'));
  });

  it('writes an empty exposition as prom-client does', () => {
    assert.equal(formatPrometheus([]), '\n');
  });
});

const SMALL_SET: MetricFamily[] = [
  { name: 'gunicorn_worker_requests_total', help: 'Total "requests".', type: 'counter', aggregator: 'sum', values: [
    { value: 3, labels: { worker_id: 'worker_0' } },
    { value: 4, labels: { worker_id: 'worker_1' } },
  ] },
  { name: 'jobs', help: 'A counter without the suffix.', type: 'counter', aggregator: 'sum', values: [{ value: 1.5, labels: {} }] },
  { name: 'memory_bytes', help: 'Line 1\nline 2 \\', type: 'gauge', aggregator: 'sum', values: [
    { value: 1024, labels: { path: 'a"b' } },
    { value: -Infinity, labels: { path: 'c' } },
  ] },
  { name: 'req_seconds', help: 'Durations.', type: 'histogram', aggregator: 'sum', values: [
    { value: 1, labels: { le: 0.005, m: 'GET' }, metricName: 'req_seconds_bucket' },
    { value: 2, labels: { le: 1, m: 'GET' }, metricName: 'req_seconds_bucket' },
    { value: 3, labels: { le: '10', m: 'GET' }, metricName: 'req_seconds_bucket' },
    { value: 4, labels: { le: 1e6, m: 'GET' }, metricName: 'req_seconds_bucket' },
    { value: 5, labels: { le: '+Inf', m: 'GET' }, metricName: 'req_seconds_bucket' },
    { value: 20.5, labels: { m: 'GET' }, metricName: 'req_seconds_sum' },
    { value: 5, labels: { m: 'GET' }, metricName: 'req_seconds_count' },
  ] },
  { name: 'rpc_seconds', help: 'A summary.', type: 'summary', aggregator: 'sum', values: [
    { value: 0.2, labels: { quantile: 0.5 } },
    { value: 0.7, labels: { quantile: 1 } },
    { value: 3, labels: {}, metricName: 'rpc_seconds_sum' },
    { value: 10, labels: {}, metricName: 'rpc_seconds_count' },
  ] },
];

describe('formatOpenMetrics', () => {
  it('writes the exact text for a small set', () => {
    assert.equal(formatOpenMetrics(SMALL_SET), [
      '# HELP gunicorn_worker_requests Total \\"requests\\".',
      '# TYPE gunicorn_worker_requests counter',
      'gunicorn_worker_requests_total{worker_id="worker_0"} 3',
      'gunicorn_worker_requests_total{worker_id="worker_1"} 4',
      '# HELP jobs A counter without the suffix.',
      '# TYPE jobs counter',
      'jobs_total 1.5',
      '# HELP memory_bytes Line 1\\nline 2 \\\\',
      '# TYPE memory_bytes gauge',
      'memory_bytes{path="a\\"b"} 1024',
      'memory_bytes{path="c"} -Inf',
      '# HELP req_seconds Durations.',
      '# TYPE req_seconds histogram',
      'req_seconds_bucket{le="0.005",m="GET"} 1',
      'req_seconds_bucket{le="1.0",m="GET"} 2',
      'req_seconds_bucket{le="10.0",m="GET"} 3',
      'req_seconds_bucket{le="1e+06",m="GET"} 4',
      'req_seconds_bucket{le="+Inf",m="GET"} 5',
      'req_seconds_sum{m="GET"} 20.5',
      'req_seconds_count{m="GET"} 5',
      '# HELP rpc_seconds A summary.',
      '# TYPE rpc_seconds summary',
      'rpc_seconds{quantile="0.5"} 0.2',
      'rpc_seconds{quantile="1.0"} 0.7',
      'rpc_seconds_sum 3',
      'rpc_seconds_count 10',
      '# EOF',
      '',
    ].join('\n'));
  });

  it('writes only # EOF for no families', () => {
    assert.equal(formatOpenMetrics([]), '# EOF\n');
  });

  it('writes le and quantile in canonical float form, as client_golang does', () => {
    const cases: [number, string][] = [
      [0, '0.0'], [1, '1.0'], [-1, '-1.0'], [0.005, '0.005'], [2.5, '2.5'], [10, '10.0'], [100000, '100000.0'],
      [1e6, '1e+06'], [1234567, '1.234567e+06'], [0.0001, '0.0001'], [0.00001, '1e-05'], [1.5e-7, '1.5e-07'],
      [1e100, '1e+100'], [-2.5e10, '-2.5e+10'], [0.1 + 0.2, '0.30000000000000004'],
      [Infinity, '+Inf'], [-Infinity, '-Inf'], [NaN, 'NaN'],
    ];
    for (const [value, text] of cases) assert.equal(canonicalFloat(value), text, String(value));
  });
});

describe('negotiate', () => {
  const cases: [string | undefined, 'prometheus' | 'openmetrics'][] = [
    [undefined, 'prometheus'],
    ['', 'prometheus'],
    ['*/*', 'prometheus'],
    ['text/plain', 'prometheus'],
    // Prometheus 2.x
    ['application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1', 'openmetrics'],
    // Prometheus 3.x
    ['application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1', 'openmetrics'],
    // Prometheus configured with scrape_protocols: [PrometheusText0.0.4, OpenMetricsText1.0.0]
    ['text/plain;version=0.0.4;q=0.5,application/openmetrics-text;version=1.0.0;q=0.4,*/*;q=0.1', 'prometheus'],
    ['application/openmetrics-text', 'openmetrics'],
    ['application/openmetrics-text; version=0.0.1', 'openmetrics'],
    ['application/openmetrics-text;q=0', 'prometheus'],
    ['application/openmetrics-text;q=0,text/plain;q=0', 'prometheus'],
    ['text/plain,application/openmetrics-text', 'openmetrics'],
    ['Application/OpenMetrics-Text ; Q=0.8 , TEXT/PLAIN;q=0.8', 'openmetrics'],
    ['application/openmetrics-text;q=0.5,*/*;q=0.9', 'prometheus'],
    ['application/openmetrics-text;q=0.5,*/*;q=0.4', 'openmetrics'],
    ['application/openmetrics-text;q=0.5,text/*;q=0.6,*/*;q=0.1', 'prometheus'],
    ['application/openmetrics-text;q=0.5,text/plain;q=0.1,*/*;q=1', 'openmetrics'],
    ['application/openmetrics-text;q=abc', 'prometheus'],
    ['application/json', 'prometheus'],
  ];
  for (const [accept, format] of cases) it(String(accept), () => assert.equal(negotiate(accept), format));

  it('exports the content types', () => {
    assert.equal(PROMETHEUS_CONTENT_TYPE, 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(OPENMETRICS_CONTENT_TYPE, 'application/openmetrics-text; version=1.0.0; charset=utf-8');
  });
});

describe('promtool', () => {
  const families = async (): Promise<MetricFamily[]> => {
    const json = (await (await sampleRegistry()).getMetricsAsJSON()) as unknown as MetricFamily[];
    return [...mergeFamilies([json]).families, ...SMALL_SET.filter((f) => f.name === 'rpc_seconds')];
  };
  const check = (promtool: string, input: string) => spawnSync(promtool, ['check', 'metrics'], { input, encoding: 'utf8' });

  it('check metrics accepts the Prometheus text format', async (t) => {
    const promtool = needTool(t, 'promtool');
    if (promtool === undefined) return;
    const result = check(promtool, formatPrometheus(await families()));
    assert.equal(result.status, 0, result.stdout + result.stderr);
  });

  it('check metrics accepts the OpenMetrics text of the families the 0.0.4 parser can read', async (t) => {
    const promtool = needTool(t, 'promtool');
    if (promtool === undefined) return;
    // `check metrics` (Prometheus 2.x) parses the 0.0.4 text format only. It reads `# EOF` as a comment and
    // canonical floats fine, but not two things OpenMetrics requires: the counter sample `x_total` of family
    // `x` (seen as an undeclared family: "no help text", exit 3) and `\"` in HELP (a parse error). The
    // test below checks the complete OpenMetrics text with Prometheus's strict OpenMetrics parser instead.
    const readable = (await families()).filter((f) => f.type !== 'counter' && !f.help.includes('"'));
    assert.deepEqual(new Set(readable.map((f) => f.type)), new Set(['gauge', 'histogram', 'summary']));
    const result = check(promtool, formatOpenMetrics(readable));
    assert.equal(result.status, 0, result.stdout + result.stderr);
  });

  it('the strict OpenMetrics parser (tsdb create-blocks-from openmetrics) accepts our OpenMetrics text', async (t) => {
    const promtool = needTool(t, 'promtool');
    if (promtool === undefined) return;
    // The backfill command needs a timestamp on every sample; adding one changes nothing else in the text.
    const text = formatOpenMetrics(await families());
    const stamped = text.split('\n').map((l) => (l === '' || l.startsWith('#') ? l : `${l} 1700000000`)).join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'promfork-om-'));
    try {
      writeFileSync(join(dir, 'metrics.om'), stamped);
      const result = spawnSync(promtool, ['tsdb', 'create-blocks-from', 'openmetrics', join(dir, 'metrics.om'), join(dir, 'blocks')], { encoding: 'utf8' });
      assert.equal(result.status, 0, result.stdout + result.stderr);
      // and the same parser refuses a text without the final # EOF, so it does check
      writeFileSync(join(dir, 'bad.om'), stamped.replace('# EOF\n', ''));
      const bad = spawnSync(promtool, ['tsdb', 'create-blocks-from', 'openmetrics', join(dir, 'bad.om'), join(dir, 'blocks2')], { encoding: 'utf8' });
      assert.notEqual(bad.status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
