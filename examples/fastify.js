// A Fastify 5 app for promfork: `npx promfork examples/fastify.js --workers 2`.
// Routes: /users/:id (JSON), /orders/:orderId (JSON; ids >= 40 fail with UpstreamTimeoutError),
// /health/:component (503 for "db").
// The promforkFastify plugin gives promfork each route's template (the `endpoint` label) and the errors
// Fastify answers itself (error_type UpstreamTimeoutError instead of http_500).

import Fastify from 'fastify';
import { promforkFastify } from 'promfork';

export class UpstreamTimeoutError extends Error {}

/** A stand-in for a call to another service: it times out for order ids >= 40. */
async function findOrder(id) {
  if (id >= 40) throw new UpstreamTimeoutError(`order service timed out for order ${id}`);
  return { id, total: id * 10 };
}

const app = Fastify();
app.register(promforkFastify);

app.get('/users/:id', async (request) => ({ id: Number(request.params.id), name: `user ${request.params.id}` }));

app.get('/orders/:orderId', async (request) => findOrder(Number(request.params.orderId)));

app.get('/health/:component', async (request, reply) => {
  const down = request.params.component === 'db';
  return reply.code(down ? 503 : 200).send({ component: request.params.component, status: down ? 'down' : 'up' });
});

// promfork owns the sockets, so the app never calls app.listen(). Fastify's Node request handler is
// app.routing (the same function Fastify hands a custom `serverFactory`); it serves once app.ready() resolved,
// i.e. once every plugin and route is loaded. promfork awaits this module, so the top-level await holds the
// worker's boot until then.
await app.ready();

export default app.routing;
