// Bench app for bench/adapters.ts: Fastify 5, with or without the promforkFastify plugin.
//
//   BENCH_ADAPTER=on|off promfork bench/apps/adapter-fastify.js -w 1
//
// The same app in both variants; only the adapter line differs (read once, at load). Routes:
//   /                  "hello from worker PID" (the benchmarks' readiness probe)
//   /users/:id         200 JSON (the success route)
//   /orders/:orderId   throws UpstreamTimeoutError: 500 from Fastify's default error handler (the failing route;
//                      Fastify's logger is off by default, so nothing is printed)
// build(withAdapter) is also imported in-process by bench/adapters.ts (micro-benchmarks).

import Fastify from 'fastify';
import { promforkFastify } from 'promfork';

export class UpstreamTimeoutError extends Error {}

/** The Node request listener (app.routing, as examples/fastify.js), once the app is ready. */
export async function build(withAdapter) {
  const app = Fastify();
  if (withAdapter) app.register(promforkFastify);
  app.get('/', async (request, reply) => {
    reply.type('text/plain');
    return `hello from worker ${process.pid}\n`;
  });
  app.get('/users/:id', async (request) => ({ id: Number(request.params.id), name: `user ${request.params.id}` }));
  app.get('/orders/:orderId', async (request) => {
    throw new UpstreamTimeoutError(`order service timed out for order ${request.params.orderId}`);
  });
  await app.ready();
  return app.routing;
}

export default await build(process.env.BENCH_ADAPTER === 'on');
