// A Hono 4 app for promfork: `npx promfork examples/hono.js --workers 2`.
// Routes: /users/:id (JSON), /orders/:orderId (JSON; ids >= 40 fail with UpstreamTimeoutError),
// /health/:component (503 for "db").
// promfork serves a fetch-style app as a Node listener and passes the Node request as `c.env.incoming`;
// promforkHono() puts the answering route's template (the `endpoint` label) and `c.error` (error_type
// UpstreamTimeoutError instead of http_500) on it.

import { Hono } from 'hono';
import { promforkHono } from 'promfork';

export class UpstreamTimeoutError extends Error {}

/** A stand-in for a call to another service: it times out for order ids >= 40. */
async function findOrder(id) {
  if (id >= 40) throw new UpstreamTimeoutError(`order service timed out for order ${id}`);
  return { id, total: id * 10 };
}

const app = new Hono();
app.use(promforkHono());

app.get('/users/:id', (c) => c.json({ id: Number(c.req.param('id')), name: `user ${c.req.param('id')}` }));

app.get('/orders/:orderId', async (c) => c.json(await findOrder(Number(c.req.param('orderId')))));

app.get('/health/:component', (c) => {
  const down = c.req.param('component') === 'db';
  return c.json({ component: c.req.param('component'), status: down ? 'down' : 'up' }, down ? 503 : 200);
});

// promfork loads the default export: an object with fetch(request, env).
export default app;
