// The exposition parser of promfork top: families by # TYPE, escapes in label values, histograms, +Inf and
// NaN, timestamps, OpenMetrics, and one clear error per bad line. Also checked against our own exposition.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry, Counter, Gauge, Histogram } from 'prom-client';
import { ExpositionSyntaxError, escapeLabelValue, parseExposition, parseNumber } from '../../src/top/exposition-parser.js';
import { formatOpenMetrics, formatPrometheus } from '../../src/exporter/exposition.js';
import type { MetricFamily } from '../../src/store/snapshot.js';

describe('parseExposition', () => {
  it('reads help, type, labels and values; other comments and blank lines are skipped', () => {
    const text = [
      '# A comment that is not HELP or TYPE',
      '# HELP app_hits_total Hits\\nper path \\\\ here',
      '# TYPE app_hits_total counter',
      'app_hits_total{path="/a",method="GET"} 3',
      'app_hits_total{path="/b",method="POST",} 4 1700000000000',
      '',
      '# TYPE app_temp gauge',
      'app_temp -1.5e3',
      'app_up 1',
      '',
    ].join('\n');
    const exp = parseExposition(text);
    assert.deepEqual(exp.types, ['app_hits_total', 'app_temp']);
    assert.deepEqual([...exp.families.keys()], ['app_hits_total', 'app_temp', 'app_up']);
    const hits = exp.families.get('app_hits_total')!;
    assert.equal(hits.type, 'counter');
    assert.equal(hits.help, 'Hits\nper path \\ here');
    assert.deepEqual(hits.samples, [
      { name: 'app_hits_total', labels: { path: '/a', method: 'GET' }, value: 3 },
      { name: 'app_hits_total', labels: { path: '/b', method: 'POST' }, value: 4, timestamp: 1700000000000 },
    ]);
    assert.deepEqual(exp.families.get('app_temp')!.samples, [{ name: 'app_temp', labels: {}, value: -1500 }]);
    assert.equal(exp.families.get('app_up')!.type, 'untyped');
    assert.equal(exp.samples.length, 4);
  });

  it('unescapes \\\\, \\" and \\n in label values, and keeps commas, braces and spaces inside quotes', () => {
    const exp = parseExposition('m{a="back\\\\slash",b="say \\"hi\\"",c="two\\nlines",d="x, y} z=\\"w\\""} 1\n');
    assert.deepEqual(exp.samples[0]!.labels, { a: 'back\\slash', b: 'say "hi"', c: 'two\nlines', d: 'x, y} z="w"' });
    assert.equal(escapeLabelValue('back\\slash "q"\nx'), 'back\\\\slash \\"q\\"\\nx');
  });

  it('groups a histogram: buckets (+Inf included), sum and count under one family', () => {
    const text = [
      '# HELP d Request duration',
      '# TYPE d histogram',
      'd_bucket{le="0.005",worker_id="worker_0"} 1',
      'd_bucket{le="0.1",worker_id="worker_0"} 3',
      'd_bucket{le="+Inf",worker_id="worker_0"} 4',
      'd_sum{worker_id="worker_0"} 2.75',
      'd_count{worker_id="worker_0"} 4',
    ].join('\n');
    const exp = parseExposition(text);
    assert.deepEqual([...exp.families.keys()], ['d']);
    const d = exp.families.get('d')!;
    assert.equal(d.type, 'histogram');
    assert.deepEqual(
      d.samples.map((s) => [s.name, s.labels.le ?? null, s.value]),
      [
        ['d_bucket', '0.005', 1],
        ['d_bucket', '0.1', 3],
        ['d_bucket', '+Inf', 4],
        ['d_sum', null, 2.75],
        ['d_count', null, 4],
      ],
    );
  });

  it('reads +Inf, -Inf and NaN values as Prometheus does (any case)', () => {
    const exp = parseExposition('a +Inf\nb -Inf\nc NaN\nd Inf\ne nan\n');
    assert.deepEqual(
      exp.samples.map((s) => s.value),
      [Infinity, -Infinity, NaN, Infinity, NaN],
    );
    assert.equal(parseNumber('1e-3'), 0.001);
    assert.equal(parseNumber('.5'), 0.5);
    assert.equal(parseNumber('1.'), 1);
    assert.equal(parseNumber('0x10'), undefined);
    assert.equal(parseNumber(''), undefined);
  });

  it('reads OpenMetrics: counters declared without _total, exemplars skipped, # EOF', () => {
    const text = [
      '# TYPE r counter',
      '# HELP r Requests',
      'r_total{w="0"} 5.0 # {trace_id="abc"} 1.0 1700000000.5',
      'r_created{w="0"} 1700000000.0',
      '# TYPE h histogram',
      'h_bucket{le="1.0"} 2',
      'h_bucket{le="+Inf"} 3',
      'h_count 3',
      'h_sum 4.5',
      '# EOF',
      '',
    ].join('\n');
    const exp = parseExposition(text);
    assert.deepEqual([...exp.families.keys()], ['r', 'h']);
    assert.deepEqual(exp.families.get('r')!.samples.map((s) => [s.name, s.value]), [['r_total', 5], ['r_created', 1700000000]]);
    assert.equal(exp.families.get('h')!.samples.length, 4);
  });

  it('names the line and the reason of a syntax error', () => {
    const cases: [string, string][] = [
      ['ok 1\n{a="1"} 2', 'line 2: expected a metric name: {a="1"} 2'],
      ['m{a=1} 2', 'line 1: expected a quoted value for label a: m{a=1} 2'],
      ['m{a="1} 2', 'line 1: unterminated value of label a: m{a="1} 2'],
      ['m{a="\\t"} 2', 'line 1: invalid escape "\\t" in label a: m{a="\\t"} 2'],
      ['m{a="1" b="2"} 2', 'line 1: expected "," or "}" after a label value: m{a="1" b="2"} 2'],
      ['m{a="1",a="2"} 2', 'line 1: label a given twice: m{a="1",a="2"} 2'],
      ['m', 'line 1: expected a value and an optional timestamp: m'],
      ['m one', 'line 1: invalid value "one": m one'],
      ['m 1 2 3', 'line 1: expected a value and an optional timestamp: m 1 2 3'],
      ['m 1 soon', 'line 1: invalid timestamp "soon": m 1 soon'],
      ['# TYPE m kounter', 'line 1: unknown metric type "kounter": # TYPE m kounter'],
      ['<html>', 'line 1: expected a metric name: <html>'],
    ];
    for (const [text, message] of cases) {
      assert.throws(
        () => parseExposition(text),
        (err: unknown) => err instanceof ExpositionSyntaxError && err.message === message,
        `${JSON.stringify(text)} -> ${message}`,
      );
    }
  });

  it('reads back exactly what our exposition writes, in both formats', async () => {
    const registry = new Registry();
    const c = new Counter({ name: 'x_requests_total', help: 'h "q" \\ \n', labelNames: ['endpoint'], registers: [registry] });
    c.inc({ endpoint: '/a"b\\c\nd' }, 3);
    const g = new Gauge({ name: 'x_gauge', help: 'g', labelNames: ['k'], registers: [registry] });
    g.set({ k: 'v' }, 0.1 + 0.2);
    g.set({ k: 'inf' }, Infinity);
    const h = new Histogram({ name: 'x_seconds', help: 'h', buckets: [0.005, 0.25], registers: [registry] });
    h.observe(0.001);
    h.observe(1);
    const families = (await registry.getMetricsAsJSON()) as unknown as MetricFamily[];
    for (const text of [formatPrometheus(families), formatOpenMetrics(families)]) {
      const exp = parseExposition(text);
      const value = (name: string, labels: Record<string, string>) =>
        exp.samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
      assert.equal(value('x_requests_total', { endpoint: '/a"b\\c\nd' }), 3);
      assert.equal(value('x_gauge', { k: 'v' }), 0.1 + 0.2);
      assert.equal(value('x_gauge', { k: 'inf' }), Infinity);
      assert.equal(value('x_seconds_bucket', { le: '+Inf' }), 2);
      assert.equal(value('x_seconds_count', {}), 2);
      assert.equal(exp.families.get('x_seconds')!.type, 'histogram');
    }
  });
});
