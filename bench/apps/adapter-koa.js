// Bench app for bench/adapters.ts: Koa 3 + @koa/router, with or without promforkKoa().
//
//   BENCH_ADAPTER=on|off promfork bench/apps/adapter-koa.js -w 1
//
// The same app in both variants; only the adapter line differs (read once, at load). Routes:
//   /                  "hello from worker PID" (the benchmarks' readiness probe)
//   /users/:id         200 JSON (the success route)
//   /orders/:orderId   throws UpstreamTimeoutError: Koa answers 500 (the failing route)
// app.silent in both variants: Koa's default onerror would print every stack trace to stderr, which is what
// the benchmark would then measure.
// build(withAdapter) is also imported in-process by bench/adapters.ts (micro-benchmarks).

import Koa from 'koa';
import Router from '@koa/router';
import { promforkKoa } from 'promfork';

export class UpstreamTimeoutError extends Error {}

/** The Koa app (promfork serves app.callback()). */
export function build(withAdapter) {
  const router = new Router();
  router.get('/', (ctx) => {
    ctx.type = 'text/plain';
    ctx.body = `hello from worker ${process.pid}\n`;
  });
  router.get('/users/:id', (ctx) => {
    ctx.body = { id: Number(ctx.params.id), name: `user ${ctx.params.id}` };
  });
  router.get('/orders/:orderId', async (ctx) => {
    throw new UpstreamTimeoutError(`order service timed out for order ${ctx.params.orderId}`);
  });
  const app = new Koa();
  app.silent = true;
  if (withAdapter) app.use(promforkKoa());
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

export default build(process.env.BENCH_ADAPTER === 'on');
