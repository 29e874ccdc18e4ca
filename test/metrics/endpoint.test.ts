// The bounded endpoint label: route templates, id-like segments, the cap, bounded methods.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { EndpointLabeler, OTHER, methodLabel, normalizePath, routeTemplate } from '../../src/metrics/endpoint.js';
import { WorkerMetrics, errorType } from '../../src/metrics/worker-metrics.js';

const req = (fields: Record<string, unknown>) => fields as unknown as IncomingMessage;

describe('normalizePath', () => {
  for (const [input, expected] of [
    ['/users/42', '/users/:id'],
    ['/users/42/orders/7?x=1', '/users/:id/orders/:id'],
    ['/items/3f2504e0-4f89-11d3-9a0c-0305e82c3301', '/items/:id'],
    ['/blobs/0123456789abcdef0123', '/blobs/:id'],
    ['/t/abcDEF123ghiJKL456mnoP', '/t/:id'],
    ['/about', '/about'],
    ['/v2/users', '/v2/users'],
    [undefined, '/'],
  ] as const) {
    it(`${input} -> ${expected}`, () => assert.equal(normalizePath(input), expected));
  }
});

describe('routeTemplate', () => {
  it('reads Express req.route with baseUrl, and the adapter property', () => {
    assert.equal(routeTemplate(req({ route: { path: '/users/:id' }, baseUrl: '/api' })), '/api/users/:id');
    assert.equal(routeTemplate(req({ promforkRoute: '/x/:y' })), '/x/:y');
    assert.equal(routeTemplate(req({ url: '/users/1' })), null);
  });
});

describe('EndpointLabeler', () => {
  it('caps distinct values and maps the rest to __other__', () => {
    const l = new EndpointLabeler(2);
    assert.equal(l.label(req({ url: '/a' })), '/a');
    assert.equal(l.label(req({ url: '/b' })), '/b');
    assert.equal(l.label(req({ url: '/c' })), OTHER);
    assert.equal(l.label(req({ url: '/a?q=1' })), '/a');
  });

  it('uses the config function first, and falls back when it throws or returns nothing', () => {
    const l = new EndpointLabeler(10, (r) => {
      if (r.url === '/boom') throw new Error('x');
      return r.url === '/custom' ? 'custom' : null;
    });
    assert.equal(l.label(req({ url: '/custom' })), 'custom');
    assert.equal(l.label(req({ url: '/boom' })), '/boom');
    assert.equal(l.label(req({ url: '/users/5' })), '/users/:id');
  });
});

describe('labels', () => {
  it('bounds methods', () => {
    assert.equal(methodLabel('GET'), 'GET');
    assert.equal(methodLabel('PROPFIND'), 'OTHER');
    assert.equal(methodLabel(undefined), 'OTHER');
  });

  it('names error types by class, or http_<status>', () => {
    assert.equal(errorType(new TypeError('x'), 500), 'TypeError');
    class QuotaError extends Error {}
    assert.equal(errorType(new QuotaError('x'), 500), 'QuotaError');
    assert.equal(errorType(null, 503), 'http_503');
    assert.equal(errorType('a string', 500), 'string');
  });
});

describe('WorkerMetrics.observe with an error handed over by an adapter (promforkError)', () => {
  class LedgerError extends Error {}
  const series = async (m: WorkerMetrics, name: string) => {
    const family = m.families().find((f) => f.name === name)!;
    return family.values
      .filter((v) => v.value > 0)
      .map((v) => {
        const { worker_id: _w, ...labels } = v.labels;
        return { ...labels, value: v.value };
      });
  };

  it('names error_type of a 5xx; a 4xx stays a success; the worker-seen error comes first', async () => {
    const m = new WorkerMetrics({ namespace: 't', seat: 0, endpointCap: 10 });
    m.observe(req({ method: 'GET', url: '/o/1', promforkRoute: '/o/:id', promforkError: new LedgerError('x') }), 500, 1n, null);
    m.observe(req({ method: 'GET', url: '/o/2', promforkRoute: '/o/:id', promforkError: new LedgerError('x') }), 404, 1n, null);
    m.observe(req({ method: 'GET', url: '/o/3', promforkError: new LedgerError('x') }), 500, 1n, new TypeError('y'));
    m.observe(req({ method: 'GET', url: '/o/4' }), 503, 1n, null);
    assert.deepEqual(await series(m, 't_worker_requests_total'), [{ value: 4 }]);
    assert.deepEqual(await series(m, 't_worker_failed_requests_total'), [
      { method: 'GET', endpoint: '/o/:id', value: 3 },
    ]);
    assert.deepEqual(await series(m, 't_worker_error_handling_total'), [
      { method: 'GET', endpoint: '/o/:id', error_type: 'LedgerError', value: 1 },
      { method: 'GET', endpoint: '/o/:id', error_type: 'TypeError', value: 1 },
      { method: 'GET', endpoint: '/o/:id', error_type: 'http_503', value: 1 },
    ]);
  });
});
