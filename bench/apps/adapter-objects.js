// Real framework objects for the micro-benchmarks of bench/adapters.ts (not an app promfork serves).
//
// Each framework answers one request in this process, through its own code, and hands back the objects it
// built for it (Fastify's request and reply, Koa's ctx, Hono's Context, Express's req): the adapters are then
// timed against those, not against stand-ins. The requests run through a real http.IncomingMessage and
// ServerResponse without a socket (the response is buffered, never written anywhere).
// It also exposes Fastify's own hook runners and Koa's own composer, to time what the framework
// pays to run one more hook or middleware.

import http from 'node:http';
import { createRequire } from 'node:module';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import Router from '@koa/router';
import { Hono } from 'hono';

const require = createRequire(import.meta.url);

export class UpstreamTimeoutError extends Error {}

/** A GET request on a Node listener, in process. Resolves with the response once `res.end()` was called. */
export function nodeRequest(listener, url) {
  const req = new http.IncomingMessage(null);
  req.method = 'GET';
  req.url = url;
  req.headers = { host: 'bench' };
  req.rawHeaders = ['host', 'bench'];
  req.push(null);
  const res = new http.ServerResponse(req);
  return new Promise((resolve, reject) => {
    const end = res.end;
    res.end = function (...args) {
      const r = end.apply(this, args);
      resolve(res);
      return r;
    };
    try {
      const p = listener(req, res);
      if (p && typeof p.then === 'function') p.then(undefined, reject);
    } catch (err) {
      reject(err);
    }
  });
}

/** Fastify: a request and reply of route /users/:id, still unanswered (reply.sent is false, as in onRequest). */
export async function fastifyObjects() {
  let captured = null;
  const app = Fastify();
  app.get('/users/:id', (request, reply) => {
    captured = { request, reply };
    return new Promise(() => {}); // never answered: the objects stay as they are before the reply
  });
  await app.ready();
  void nodeRequest(app.routing, '/users/42');
  for (let i = 0; i < 100 && !captured; i++) await new Promise((resolve) => setImmediate(resolve));
  if (!captured) throw new Error('fastify: the route handler did not run');
  if (captured.request.routeOptions.url !== '/users/:id') throw new Error('fastify: unexpected routeOptions.url');
  // Fastify's runners (lib/hooks.js) of onRequest hooks and of onError hooks (reply.js runs those with
  // onSendHookRunner), what it calls when a route has at least one such hook.
  const { onRequestHookRunner, onSendHookRunner } = require('fastify/lib/hooks.js');
  return { ...captured, onRequestHookRunner, onSendHookRunner };
}

/** Koa + @koa/router: the ctx of an answered GET /users/42 (ctx._matchedRoute set), and Koa's composer. */
export async function koaObjects() {
  let ctx = null;
  const router = new Router();
  router.get('/users/:id', (c) => {
    ctx = c;
    c.body = { id: Number(c.params.id) };
  });
  const app = new Koa();
  app.use(router.routes());
  const res = await nodeRequest(app.callback(), '/users/42');
  if (!ctx || res.statusCode !== 200 || ctx._matchedRoute !== '/users/:id') throw new Error('koa: unexpected ctx');
  return { ctx, compose: app.compose };
}

/**
 * Hono: the Context of an answered GET /users/42 (200) and of a GET /orders/42 whose handler threw (c.error
 * set, 500 from onError), as they are after the handlers ran, with `c.env.incoming` a real IncomingMessage.
 */
export async function honoObjects() {
  let last = null;
  const app = new Hono();
  app.use(async (c, next) => {
    await next();
    last = c;
  });
  app.get('/users/:id', (c) => c.json({ id: Number(c.req.param('id')) }));
  app.get('/orders/:orderId', () => {
    throw new UpstreamTimeoutError('order service timed out');
  });
  app.onError((err, c) => c.json({ error: 'internal' }, 500));
  const env = () => ({ incoming: new http.IncomingMessage(null), outgoing: null });
  await app.fetch(new Request('http://bench/users/42'), env());
  const success = last;
  await app.fetch(new Request('http://bench/orders/42'), env());
  const failure = last;
  if (!success || success.res.status !== 200 || success.error !== undefined) throw new Error('hono: unexpected success context');
  if (!failure || failure.res.status !== 500 || !(failure.error instanceof UpstreamTimeoutError)) throw new Error('hono: unexpected failure context');
  return { success, failure };
}

/** Express: the req of a GET /orders/42 whose handler threw, as the error middleware receives it (req.route set). */
export async function expressObjects() {
  let captured = null;
  const app = express();
  app.get('/orders/:orderId', () => {
    throw new UpstreamTimeoutError('order service timed out');
  });
  app.use((err, req, res, _next) => {
    captured = { req, res, err };
    res.status(500).json({ error: 'internal' });
  });
  const res = await nodeRequest(app, '/orders/42');
  if (!captured || res.statusCode !== 500 || captured.req.route?.path !== '/orders/:orderId') throw new Error('express: unexpected req');
  return captured;
}
