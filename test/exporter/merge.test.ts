import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeFamilies, RetiredTotals } from '../../src/exporter/merge.js';
import type { Aggregator, MetricFamily, Sample } from '../../src/store/snapshot.js';

function counter(name: string, values: Sample[]): MetricFamily {
  return { name, help: `${name} help`, type: 'counter', values, aggregator: 'sum' };
}

function gauge(name: string, aggregator: Aggregator, values: Sample[]): MetricFamily {
  return { name, help: `${name} help`, type: 'gauge', values, aggregator };
}

/** A prom-client-shaped histogram family: buckets (cumulative) with `le` first, +Inf, _sum, _count per label set. */
function histogram(name: string, sets: { labels: Record<string, string>; buckets: [number | '+Inf', number][]; sum: number }[]): MetricFamily {
  const values: Sample[] = [];
  for (const set of sets) {
    let count = 0;
    for (const [le, v] of set.buckets) {
      values.push({ value: v, labels: { le, ...set.labels }, metricName: `${name}_bucket` });
      count = v;
    }
    values.push({ value: set.sum, labels: { ...set.labels }, metricName: `${name}_sum` });
    values.push({ value: count, labels: { ...set.labels }, metricName: `${name}_count` });
  }
  return { name, help: `${name} help`, type: 'histogram', values, aggregator: 'sum' };
}

function summary(name: string, labels: Record<string, string>, q50: number, sum: number, count: number): MetricFamily {
  return {
    name,
    help: `${name} help`,
    type: 'summary',
    aggregator: 'sum',
    values: [
      { labels: { quantile: 0.5, ...labels }, value: q50 },
      { labels: { quantile: 0.9, ...labels }, value: q50 * 2 },
      { metricName: `${name}_sum`, labels: { ...labels }, value: sum },
      { metricName: `${name}_count`, labels: { ...labels }, value: count },
    ],
  };
}

describe('mergeFamilies', () => {
  it('sums counters from 3 workers and the retired totals, per label set', () => {
    const retired = [counter('gunicorn_master_worker_restarts_total', [{ value: 2, labels: {} }]),
      counter('gunicorn_worker_requests_total', [{ value: 100, labels: { worker_id: 'worker_0' } }])];
    const w0 = [counter('gunicorn_worker_requests_total', [{ value: 5, labels: { worker_id: 'worker_0' } }])];
    const w1 = [counter('gunicorn_worker_requests_total', [{ value: 7, labels: { worker_id: 'worker_1' } }])];
    const w2 = [
      counter('gunicorn_worker_requests_total', [{ value: 11, labels: { worker_id: 'worker_2' } }]),
      counter('app_jobs_total', [{ value: 1, labels: { kind: 'a' } }, { value: 2, labels: { kind: 'b' } }]),
    ];
    const w3 = [counter('app_jobs_total', [{ value: 10, labels: { kind: 'b' } }])];
    const { families, conflicts } = mergeFamilies([retired, w0, w1, w2, w3]);
    assert.deepEqual(conflicts, []);
    assert.deepEqual(families, [
      counter('app_jobs_total', [{ value: 1, labels: { kind: 'a' } }, { value: 12, labels: { kind: 'b' } }]),
      counter('gunicorn_master_worker_restarts_total', [{ value: 2, labels: {} }]),
      counter('gunicorn_worker_requests_total', [
        { value: 105, labels: { worker_id: 'worker_0' } },
        { value: 7, labels: { worker_id: 'worker_1' } },
        { value: 11, labels: { worker_id: 'worker_2' } },
      ]),
    ]);
  });

  it('does not depend on label order (keeps the first-seen order in the output)', () => {
    const a = [counter('x_total', [{ value: 1, labels: { worker_id: 'worker_0', method: 'GET', endpoint: '/a' } }])];
    const b = [counter('x_total', [{ value: 2, labels: { endpoint: '/a', worker_id: 'worker_0', method: 'GET' } }])];
    const c = [counter('x_total', [{ value: 4, labels: { method: 'GET', endpoint: '/a', worker_id: 'worker_0' } }])];
    const { families } = mergeFamilies([a, b, c]);
    assert.deepEqual(families[0].values, [{ value: 7, labels: { worker_id: 'worker_0', method: 'GET', endpoint: '/a' } }]);
  });

  it('treats a number label value and its decimal string as the same value, and distinguishes tricky values', () => {
    const a = [counter('x_total', [{ value: 1, labels: { code: 200 } }, { value: 1, labels: { a: 'x;b=1:y' } }])];
    const b = [counter('x_total', [{ value: 2, labels: { code: '200' } }, { value: 1, labels: { a: 'x', b: 'y' } }])];
    const { families } = mergeFamilies([a, b]);
    assert.deepEqual(families[0].values, [
      { value: 3, labels: { code: 200 } },
      { value: 1, labels: { a: 'x;b=1:y' } },
      { value: 1, labels: { a: 'x', b: 'y' } },
    ]);
  });

  const gaugeParts = (aggregator: Aggregator): MetricFamily[][] => [
    [gauge('g', aggregator, [{ value: 3, labels: { k: 'a' } }])],
    [gauge('g', aggregator, [{ value: 1, labels: { k: 'a' } }, { value: 10, labels: { k: 'b' } }])],
    [gauge('g', aggregator, [{ value: 8, labels: { k: 'a' } }])],
  ];
  const expected: [Aggregator, number][] = [['sum', 12], ['min', 1], ['max', 8], ['average', 4], ['first', 3]];
  for (const [aggregator, a] of expected) {
    it(`combines gauges with aggregator ${aggregator}`, () => {
      const { families } = mergeFamilies(gaugeParts(aggregator));
      assert.deepEqual(families, [gauge('g', aggregator, [{ value: a, labels: { k: 'a' } }, { value: 10, labels: { k: 'b' } }])]);
    });
  }

  it('does not expose a family whose aggregator is omit', () => {
    const { families, conflicts } = mergeFamilies([
      ...gaugeParts('omit'),
      [counter('c_total', [{ value: 1, labels: {} }])],
    ]);
    assert.deepEqual(conflicts, []);
    assert.deepEqual(families.map((f) => f.name), ['c_total']);
  });

  it('uses defaultAggregator for a gauge family without a valid aggregator', () => {
    const bad = (v: number): MetricFamily => ({ ...gauge('g', 'sum', [{ value: v, labels: {} }]), aggregator: 'bogus' as Aggregator });
    assert.equal(mergeFamilies([[bad(1)], [bad(5)]]).families[0].values[0].value, 6);
    assert.equal(mergeFamilies([[bad(1)], [bad(5)]], { defaultAggregator: 'max' }).families[0].values[0].value, 5);
  });

  it('never reads a null (JSON-serialised NaN) value as 0', () => {
    const parts = [[gauge('g', 'sum', [{ value: null as unknown as number, labels: {} }])], [gauge('g', 'sum', [{ value: 2, labels: {} }])]];
    assert.ok(Number.isNaN(mergeFamilies(parts).families[0].values[0].value));
  });

  it('drops summary quantiles and sums _sum and _count', () => {
    const { families } = mergeFamilies([
      [summary('s', { route: '/a' }, 0.1, 1.5, 3)],
      [summary('s', { route: '/a' }, 0.3, 2.5, 4), summary('t', {}, 1, 1, 1)],
    ]);
    assert.deepEqual(families, [
      {
        name: 's', help: 's help', type: 'summary', aggregator: 'sum',
        values: [
          { metricName: 's_sum', labels: { route: '/a' }, value: 4 },
          { metricName: 's_count', labels: { route: '/a' }, value: 7 },
        ],
      },
      {
        name: 't', help: 't help', type: 'summary', aggregator: 'sum',
        values: [
          { metricName: 't_sum', labels: {}, value: 1 },
          { metricName: 't_count', labels: {}, value: 1 },
        ],
      },
    ]);
  });

  it('reports a type conflict once per family, keeps the first type and skips the other samples', () => {
    const { families, conflicts } = mergeFamilies([
      [counter('x', [{ value: 1, labels: {} }])],
      [gauge('x', 'sum', [{ value: 100, labels: {} }])],
      [counter('x', [{ value: 2, labels: {} }])],
      [gauge('x', 'max', [{ value: 100, labels: {} }])],
      [{ name: 'x', help: 'h', type: 'histogram', values: [], aggregator: 'sum' }],
    ]);
    assert.deepEqual(families, [counter('x', [{ value: 3, labels: {} }])]);
    assert.equal(conflicts.length, 1);
    assert.match(conflicts[0], /^metric family x: type gauge conflicts with counter/);
  });

  it('exposes each family once even when every part has it (docs/design.md, L6), sorted by name', () => {
    const parts = [0, 1, 2, 3].map((w) => [
      gauge('b', 'sum', [{ value: w, labels: { worker_id: `worker_${w}` } }]),
      counter('a_total', [{ value: 1, labels: {} }]),
    ]);
    const { families } = mergeFamilies(parts);
    assert.deepEqual(families.map((f) => f.name), ['a_total', 'b']);
    assert.equal(families[0].values[0].value, 4);
    assert.equal(families[1].values.length, 4);
  });

  it('sums histograms per le and keeps buckets ascending, +Inf last, then _sum and _count', () => {
    const w0 = [histogram('h', [{ labels: { w: '0' }, buckets: [[0.5, 1], [1, 2], ['+Inf', 3]], sum: 4 }])];
    // worker 1 sends its label sets in another order, labels in another order, and has a bucket (0.1) the first
    // one lacks; le given as a string once.
    const w1: MetricFamily[] = [{
      name: 'h', help: 'h help', type: 'histogram', aggregator: 'sum',
      values: [
        { value: 9, labels: { w: '1' }, metricName: 'h_count' },
        { value: 2, labels: { le: 0.1, w: '0' }, metricName: 'h_bucket' },
        { value: 5, labels: { w: '0', le: '+Inf' }, metricName: 'h_bucket' },
        { value: 6, labels: { w: '0' }, metricName: 'h_sum' },
        { value: 3, labels: { le: '1', w: '0' }, metricName: 'h_bucket' },
        { value: 5, labels: { w: '0' }, metricName: 'h_count' },
        { value: 2, labels: { le: 0.5, w: '0' }, metricName: 'h_bucket' },
      ],
    }];
    const { families } = mergeFamilies([w0, w1]);
    assert.deepEqual(families[0].values, [
      { value: 2, labels: { le: 0.1, w: '0' }, metricName: 'h_bucket' },
      { value: 3, labels: { le: 0.5, w: '0' }, metricName: 'h_bucket' },
      { value: 5, labels: { le: 1, w: '0' }, metricName: 'h_bucket' },
      { value: 8, labels: { le: '+Inf', w: '0' }, metricName: 'h_bucket' },
      { value: 10, labels: { w: '0' }, metricName: 'h_sum' },
      { value: 8, labels: { w: '0' }, metricName: 'h_count' },
      { value: 9, labels: { w: '1' }, metricName: 'h_count' },
    ]);
  });

  it('never confuses the _sum, _count or buckets of a histogram with a stray sample of another name', () => {
    const h: MetricFamily = {
      name: 's', help: 'h', type: 'histogram', aggregator: 'sum',
      values: [
        { value: 1, labels: { le: '+Inf' }, metricName: 's_bucket' },
        { value: 2, labels: {}, metricName: 's_sum' },
        { value: 1, labels: {}, metricName: 's_count' },
        { value: 7, labels: {}, metricName: 's' },
        { value: 8, labels: {}, metricName: 'c' },
      ],
    };
    const { families } = mergeFamilies([[h], [h]]);
    assert.deepEqual(families[0].values.map((v) => [v.metricName, v.value]), [['s_bucket', 2], ['s_sum', 4], ['s_count', 2], ['s', 14], ['c', 16]]);
  });

  it('keeps the input order of a histogram that is already in exposition order', () => {
    const h = histogram('h', [
      { labels: { w: 'b' }, buckets: [[1, 1], ['+Inf', 2]], sum: 3 },
      { labels: { w: 'a' }, buckets: [[1, 0], ['+Inf', 1]], sum: 1 },
    ]);
    const { families } = mergeFamilies([[h], [h]]);
    assert.deepEqual(families[0].values, h.values.map((s) => ({ ...s, value: s.value * 2 })));
  });

  it('does not modify its input', () => {
    const parts = [[counter('c_total', [{ value: 1, labels: { a: 'x' } }])], [counter('c_total', [{ value: 2, labels: { a: 'x' } }])]];
    const copy = structuredClone(parts);
    mergeFamilies(parts);
    assert.deepEqual(parts, copy);
  });
});

describe('RetiredTotals', () => {
  const snapshot = (n: number): MetricFamily[] => [
    counter('gunicorn_worker_requests_total', [{ value: n, labels: { worker_id: 'worker_0' } }]),
    gauge('gunicorn_worker_memory_bytes', 'sum', [{ value: 1e6, labels: { worker_id: 'worker_0' } }]),
    histogram('gunicorn_worker_request_duration_seconds', [{ labels: { worker_id: 'worker_0' }, buckets: [[0.005, n], ['+Inf', n]], sum: n / 10 }]),
    summary('app_latency', {}, 0.2, n, n),
  ];

  it('folding twice accumulates counters, histograms and summary sums, and drops gauges and quantiles', () => {
    const totals = new RetiredTotals();
    assert.equal(totals.size, 0);
    totals.fold(snapshot(3));
    totals.fold(snapshot(4));
    assert.equal(totals.size, 1 + 4 + 2);
    assert.deepEqual(totals.families(), [
      {
        name: 'app_latency', help: 'app_latency help', type: 'summary', aggregator: 'sum',
        values: [
          { metricName: 'app_latency_sum', labels: {}, value: 7 },
          { metricName: 'app_latency_count', labels: {}, value: 7 },
        ],
      },
      histogram('gunicorn_worker_request_duration_seconds', [{ labels: { worker_id: 'worker_0' }, buckets: [[0.005, 7], ['+Inf', 7]], sum: 0.7 }]),
      counter('gunicorn_worker_requests_total', [{ value: 7, labels: { worker_id: 'worker_0' } }]),
    ]);
  });

  it('does not keep references to the folded snapshot', () => {
    const totals = new RetiredTotals();
    const snap = snapshot(1);
    totals.fold(snap);
    (snap[0].values[0].labels as Record<string, string>).worker_id = 'changed';
    assert.deepEqual(totals.families().find((f) => f.type === 'counter')?.values[0].labels, { worker_id: 'worker_0' });
  });

  it('round-trips through JSON', () => {
    const totals = new RetiredTotals();
    totals.fold(snapshot(3));
    totals.fold([counter('gunicorn_master_worker_restarts_total', [{ value: 1, labels: {} }])]);
    const text = JSON.stringify(totals);
    const back = RetiredTotals.fromJSON(JSON.parse(text));
    assert.deepEqual(back.families(), totals.families());
    assert.equal(back.size, totals.size);
    assert.equal(JSON.stringify(back), text);
    back.fold(snapshot(1));
    assert.equal(back.families().find((f) => f.name === 'gunicorn_worker_requests_total')?.values[0].value, 4);
  });

  it('refuses JSON of another shape with a TypeError', () => {
    for (const bad of [null, 3, {}, { version: 2, families: [] }, { version: 1, families: {} },
      { version: 1, families: [{ name: 'x', help: 'h', type: 'weird', values: [] }] },
      { version: 1, families: [{ name: 'x', help: 'h', type: 'counter', values: [{ value: 'a', labels: {} }] }] },
      { version: 1, families: [{ name: 'x', help: 'h', type: 'counter', values: [{ value: 1 }] }] }]) {
      assert.throws(() => RetiredTotals.fromJSON(bad), TypeError);
    }
  });

  it('refuses names a stored snapshot could not hold: a planted retired file prints no line of its own', () => {
    const family = (name: string, labels: Record<string, string>, metricName?: string) => ({
      version: 1,
      families: [{ name, help: 'h', type: 'counter', values: [{ value: 1, labels, ...(metricName ? { metricName } : {}) }] }],
    });
    for (const [bad, message] of [
      [family('x_total\nevil_total 1e9', {}), /bad metric name/],
      [family('x_total', { 'bad label': 'v' }), /bad label name/],
      [family('x_total', {}, 'x_total 7\ny'), /bad sample name/],
    ] as const) {
      assert.throws(() => RetiredTotals.fromJSON(bad), (err: Error) => err instanceof TypeError && message.test(err.message));
    }
    assert.equal(RetiredTotals.fromJSON(family('x_total', { worker_id: 'worker_0' })).families()[0]!.name, 'x_total');
  });

  it('feeds mergeFamilies as one more part: counters stay monotonic when a worker is folded', () => {
    const totals = new RetiredTotals();
    const live = [counter('c_total', [{ value: 5, labels: { worker_id: 'worker_0' } }])];
    const before = mergeFamilies([totals.families(), live]).families[0].values[0].value;
    totals.fold(live); // the worker died: fold its final snapshot, then drop it; its replacement starts at 0
    const replacement = [counter('c_total', [{ value: 0, labels: { worker_id: 'worker_0' } }])];
    const after = mergeFamilies([totals.families(), replacement]).families[0].values[0].value;
    assert.equal(before, 5);
    assert.equal(after, 5);
  });
});
