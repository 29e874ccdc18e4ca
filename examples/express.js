// An Express 5 app for promfork: `npx promfork examples/express.js --workers 2`.
// Routes: /users/:id (JSON), /orders/:orderId (JSON; ids >= 40 fail with UpstreamTimeoutError),
// /health/:component (503 for "db").
// Express keeps the matched route on the request (req.route), which promfork reads for the `endpoint` label.
// Express answers a failing handler with a 500 itself: promforkExpressErrors(), after the routes, hands the
// error over so error_type is its class (UpstreamTimeoutError) instead of http_500.

import express from 'express';
import { promforkExpressErrors } from 'promfork';

export class UpstreamTimeoutError extends Error {}

/** A stand-in for a call to another service: it times out for order ids >= 40. */
async function findOrder(id) {
  if (id >= 40) throw new UpstreamTimeoutError(`order service timed out for order ${id}`);
  return { id, total: id * 10 };
}

const app = express();

app.get('/users/:id', (req, res) => {
  res.json({ id: Number(req.params.id), name: `user ${req.params.id}` });
});

// Express 5 passes a rejected promise to the error handlers.
app.get('/orders/:orderId', async (req, res) => {
  res.json(await findOrder(Number(req.params.orderId)));
});

app.get('/health/:component', (req, res) => {
  const down = req.params.component === 'db';
  res.status(down ? 503 : 200).json({ component: req.params.component, status: down ? 'down' : 'up' });
});

app.use(promforkExpressErrors());

// promfork loads the default export: an Express app is a Node request listener.
export default app;
