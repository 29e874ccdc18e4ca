// Bench app for bench/adapters.ts: Express 5, with or without promforkExpressErrors().
//
//   BENCH_ADAPTER=on|off promfork bench/apps/adapter-express.js -w 1
//
// The same app in both variants; only the adapter line differs (read once, at load). Routes:
//   /                  "hello from worker PID" (the benchmarks' readiness probe)
//   /users/:id         200 JSON (the success route)
//   /orders/:orderId   throws UpstreamTimeoutError: 500 (the failing route)
// The app's own error handler answers the 500 silently in both variants (Express's default final handler
// would print every stack trace to stderr, which is what the benchmark would then measure).
// build(withAdapter) is also imported in-process by bench/adapters.ts (micro-benchmarks).

import express from 'express';
import { promforkExpressErrors } from 'promfork';

export class UpstreamTimeoutError extends Error {}

export function build(withAdapter) {
  const app = express();
  app.get('/', (req, res) => {
    res.type('text/plain').send(`hello from worker ${process.pid}\n`);
  });
  app.get('/users/:id', (req, res) => {
    res.json({ id: Number(req.params.id), name: `user ${req.params.id}` });
  });
  app.get('/orders/:orderId', (req) => {
    throw new UpstreamTimeoutError(`order service timed out for order ${req.params.orderId}`);
  });
  if (withAdapter) app.use(promforkExpressErrors());
  app.use((err, req, res, _next) => {
    res.status(500).json({ error: 'internal' });
  });
  return app;
}

export default build(process.env.BENCH_ADAPTER === 'on');
