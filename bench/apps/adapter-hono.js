// Bench app for bench/adapters.ts: Hono 4, with or without promforkHono().
//
//   BENCH_ADAPTER=on|off promfork bench/apps/adapter-hono.js -w 1
//
// The same app in both variants; only the adapter line differs (read once, at load). Routes:
//   /                  "hello from worker PID" (the benchmarks' readiness probe)
//   /users/:id         200 JSON (the success route)
//   /orders/:orderId   throws UpstreamTimeoutError: 500 (the failing route)
// app.onError answers the 500 silently in both variants (Hono's default error handler console.error()s every
// error, which is what the benchmark would then measure).
// build(withAdapter) is also imported in-process by bench/adapters.ts (micro-benchmarks), which also passes
// other middleware in the adapter's place (a no-op one: what any middleware costs in Hono), or an array.

import { Hono } from 'hono';
import { promforkHono } from 'promfork';

export class UpstreamTimeoutError extends Error {}

/** The Hono app (promfork serves its fetch(request, env)). */
export function build(withAdapter, middleware = withAdapter ? promforkHono() : null) {
  const app = new Hono();
  if (middleware) app.use(...[].concat(middleware));
  app.get('/', (c) => c.text(`hello from worker ${process.pid}\n`));
  app.get('/users/:id', (c) => c.json({ id: Number(c.req.param('id')), name: `user ${c.req.param('id')}` }));
  app.get('/orders/:orderId', (c) => {
    throw new UpstreamTimeoutError(`order service timed out for order ${c.req.param('orderId')}`);
  });
  app.onError((err, c) => c.json({ error: 'internal' }, 500));
  return app;
}

export default build(process.env.BENCH_ADAPTER === 'on');
