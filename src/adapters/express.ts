// Express: `app.use(promforkExpressErrors())` after the routes (and before your own error handler).
// Express keeps `req.route` (and `req.baseUrl`) on the request, and promfork reads them, so routes need no
// adapter; but Express answers a thrown or rejected handler with a 500 itself, so this error middleware hands
// the error over: `error_type` is its class instead of `http_500`.
// A router mounted under a prefix (`app.use('/api', router)`) has its `req.baseUrl` reset when an error leaves
// it: add promforkExpressErrors() at the end of that router too, so the endpoint keeps the prefix.
// Structural types only: Express is not a dependency of promfork.

import type { IncomingMessage } from 'node:http';
import { hasRoute, setRequestError, setRoute } from './node.js';

type ExpressRequest = IncomingMessage & { route?: { path?: unknown }; baseUrl?: unknown };

/** An Express error middleware (four parameters: Express recognises error handlers by their arity). */
export function promforkExpressErrors() {
  return function promforkExpressErrors(err: unknown, req: IncomingMessage, _res: unknown, next: (err?: unknown) => void): void {
    try {
      setRequestError(req, err);
      // Inside a mounted router req.baseUrl still holds its prefix here; record the full template once.
      const r = req as ExpressRequest;
      if (!hasRoute(req) && r.route && typeof r.route.path === 'string') {
        setRoute(req, `${typeof r.baseUrl === 'string' ? r.baseUrl : ''}${r.route.path}`);
      }
    } catch {
      // never fail the request for metrics
    }
    next(err);
  };
}
