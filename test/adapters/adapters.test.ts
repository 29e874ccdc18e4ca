// The adapters in process, against the real frameworks: the route template and the error they leave on the Node
// request (what promfork's accounting reads when the response closed), with prefixes and nested routers, and
// that they never fail a request. Fastify and Hono are used through their own types: the adapters' structural
// types must fit `app.register(...)` and `app.use(...)`.
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type RequestListener } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { promforkExpressErrors, promforkFastify, promforkHono, promforkKoa, setRequestError, setRoute } from '../../src/index.js';
import { ERROR_PROPERTY, routeTemplate } from '../../src/metrics/endpoint.js';
import { fetchToListener } from '../../src/workers/fetch-adapter.js';

// Express and Koa ship no type declarations (and @types are not installed): load them untyped.
const require = createRequire(import.meta.url);
const express = require('express');
const Koa = require('koa');
const Router = require('@koa/router');

class LedgerError extends Error {}

const errorOf = (req: IncomingMessage) => (req as unknown as Record<string, unknown>)[ERROR_PROPERTY];

/** What promfork's accounting sees: route template and handed-over error, read when the response closed. */
interface Seen {
  status: number;
  route: string | null;
  error: unknown;
}

/** Serve `listener` on loopback, GET each path on a fresh connection, and report what each request carried. */
async function serve(listener: RequestListener, paths: string[]): Promise<Seen[]> {
  const seen: Promise<Seen>[] = [];
  const server = http.createServer((req, res) => {
    seen.push(new Promise((resolve) => res.once('close', () => resolve({ status: res.statusCode, route: routeTemplate(req), error: errorOf(req) }))));
    listener(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    for (const p of paths) {
      const r = await fetch(`http://127.0.0.1:${port}${p}`, { headers: { connection: 'close' } });
      await r.arrayBuffer();
    }
    return await Promise.all(seen);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

const brief = (s: Seen) => [s.status, s.route, s.error instanceof Error ? s.error.constructor.name : s.error];

describe('setRoute and setRequestError', () => {
  it('the last route and the first error win; null errors and frozen requests are ignored', () => {
    const req = {} as IncomingMessage;
    setRoute(req, '/a/:id');
    setRoute(req, '/a/:id/b');
    const cause = new LedgerError('x');
    setRequestError(req, null);
    setRequestError(req, cause);
    setRequestError(req, new Error('wrapper'));
    assert.equal(routeTemplate(req), '/a/:id/b');
    assert.equal(errorOf(req), cause);
    const frozen = Object.freeze({}) as IncomingMessage;
    assert.doesNotThrow(() => {
      setRoute(frozen, '/x');
      setRequestError(frozen, cause);
    });
  });
});

describe('promforkFastify', () => {
  it('applies to every route, prefixes included, and hands over the errors Fastify answers', async () => {
    const app = Fastify();
    app.register(promforkFastify);
    app.get('/users/:id', async (request) => {
      if ((request.params as { id: string }).id === '9') throw new LedgerError('ledger down');
      return { ok: true };
    });
    app.register(
      async (api) => {
        api.get('/orders/:orderId', async () => {
          throw new LedgerError('ledger down');
        });
      },
      { prefix: '/api' },
    );
    await app.ready();
    const seen = await serve(app.routing, ['/users/1', '/users/9', '/api/orders/3', '/missing']);
    assert.deepEqual(seen.map(brief), [
      [200, '/users/:id', undefined],
      [500, '/users/:id', 'LedgerError'],
      [500, '/api/orders/:orderId', 'LedgerError'],
      [404, null, undefined],
    ]);
    await app.close();
  });

  it('is marked to skip encapsulation', () => {
    assert.equal((promforkFastify as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')], true);
  });
});

describe('promforkKoa', () => {
  it("records @koa/router's template (nested prefixes), hands over a thrown error and rethrows it", async () => {
    const api = new Router({ prefix: '/api' });
    const orders = new Router();
    orders.get('/orders/:orderId', () => {
      throw new LedgerError('ledger down');
    });
    orders.get('/orders/:orderId/items', (ctx: any) => {
      ctx.throw(404, 'no items'); // a client error: handed over, but the status is not a failure
    });
    api.use('/v1', orders.routes());
    api.get('/users/:id', (ctx: any) => {
      ctx.body = { id: ctx.params.id };
    });
    const app = new Koa();
    app.silent = true;
    app.use(promforkKoa());
    app.use(api.routes());
    const seen = await serve(app.callback(), ['/api/users/5', '/api/v1/orders/7', '/api/v1/orders/7/items', '/nowhere']);
    assert.deepEqual(seen.map(brief), [
      [200, '/api/users/:id', undefined],
      [500, '/api/v1/orders/:orderId', 'LedgerError'],
      [404, '/api/v1/orders/:orderId/items', 'NotFoundError'],
      [404, null, undefined],
    ]);
  });

  it('never throws into the request when the context is odd', async () => {
    const mw = promforkKoa();
    await mw({ req: Object.freeze({}) as IncomingMessage, _matchedRoute: '/x' }, async () => {});
    await assert.rejects(
      mw({ req: Object.freeze({}) as IncomingMessage }, async () => {
        throw new LedgerError('mine');
      }),
      LedgerError,
    );
  });
});

describe('promforkHono', () => {
  const build = () => {
    const app = new Hono();
    app.use(promforkHono());
    app.get('/users/:id', (c) => (c.req.param('id') === '9' ? c.json({ down: true }, 503) : c.json({ ok: true })));
    const api = new Hono();
    api.get('/orders/:orderId', () => {
      throw new LedgerError('ledger down');
    });
    app.route('/api', api);
    app.use('/admin/*', async () => {
      throw new RangeError('middleware failed');
    });
    app.onError((err, c) => c.text(err.message, 500)); // c.error is set for a custom onError too
    return app;
  };

  it("records the answering handler's template and c.error on c.env.incoming, for failures only", async () => {
    const seen = await serve(fetchToListener(build()), ['/users/1', '/users/9', '/api/orders/3', '/admin/x', '/missing']);
    assert.deepEqual(seen.map(brief), [
      [200, null, undefined], // successful responses skip the lookup
      [503, '/users/:id', undefined],
      [500, '/api/orders/:orderId', 'LedgerError'],
      [500, '/admin/*', 'RangeError'], // the middleware that threw answered
      [404, null, undefined],
    ]);
  });

  it('does nothing without c.env.incoming (another runtime)', async () => {
    const res = await build().fetch(new Request('http://x/api/orders/3'));
    assert.equal(res.status, 500);
  });
});

describe('promforkExpressErrors', () => {
  it('hands over thrown and rejected errors; Express keeps req.route; inside a mounted router it keeps the prefix', async () => {
    const app = express();
    const api = express.Router();
    api.get('/orders/:orderId', async () => {
      throw new LedgerError('ledger down');
    });
    api.use(promforkExpressErrors()); // in the mounted router: the endpoint keeps "/api"
    app.use('/api', api);
    app.get('/users/:id', (req: any, res: any) => {
      if (req.params.id === '9') throw new TypeError('bad user');
      res.status(req.params.id === '8' ? 503 : 200).json({ id: req.params.id });
    });
    app.use(promforkExpressErrors());
    app.use((err: Error, _req: unknown, res: any, _next: unknown) => res.status(500).json({ error: err.message }));
    const seen = await serve(app, ['/users/1', '/users/8', '/users/9', '/api/orders/3']);
    assert.deepEqual(seen.map(brief), [
      [200, '/users/:id', undefined],
      [503, '/users/:id', undefined],
      [500, '/users/:id', 'TypeError'],
      [500, '/api/orders/:orderId', 'LedgerError'],
    ]);
  });

  it('has the arity of an error middleware and always passes the error on', () => {
    const mw = promforkExpressErrors();
    assert.equal(mw.length, 4);
    const err = new LedgerError('x');
    let passed: unknown;
    mw(err, Object.freeze({}) as IncomingMessage, {}, (e) => (passed = e));
    assert.equal(passed, err);
  });
});
