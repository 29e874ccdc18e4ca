// A Koa 3 app with @koa/router for promfork: `npx promfork examples/koa.js --workers 2`.
// Routes: /users/:id (JSON), /orders/:orderId (JSON; ids >= 40 fail with UpstreamTimeoutError),
// /health/:component (503 for "db").
// promforkKoa(), added before the router, gives promfork the matched route template (the `endpoint` label)
// and the errors Koa answers itself (error_type UpstreamTimeoutError instead of http_500).

import Koa from 'koa';
import Router from '@koa/router';
import { promforkKoa } from 'promfork';

export class UpstreamTimeoutError extends Error {}

/** A stand-in for a call to another service: it times out for order ids >= 40. */
async function findOrder(id) {
  if (id >= 40) throw new UpstreamTimeoutError(`order service timed out for order ${id}`);
  return { id, total: id * 10 };
}

const router = new Router();

router.get('/users/:id', (ctx) => {
  ctx.body = { id: Number(ctx.params.id), name: `user ${ctx.params.id}` };
});

router.get('/orders/:orderId', async (ctx) => {
  ctx.body = await findOrder(Number(ctx.params.orderId));
});

router.get('/health/:component', (ctx) => {
  const down = ctx.params.component === 'db';
  ctx.status = down ? 503 : 200;
  ctx.body = { component: ctx.params.component, status: down ? 'down' : 'up' };
});

const app = new Koa();
app.use(promforkKoa());
app.use(router.routes());
app.use(router.allowedMethods());

// promfork loads the default export: for a Koa app it serves app.callback().
export default app;
