// Hono: `app.use(promforkHono())`. After the handlers ran, for a failed response only (an error or a 5xx), it
// copies the template of the route that answered (`/users/:id`, not this middleware's `*`) and `c.error` onto
// the Node request, which promfork passes to fetch apps as `c.env.incoming` (the env shape of @hono/node-server).
// Elsewhere (no `c.env.incoming`) it does nothing.
// Structural types only: Hono is not a dependency of promfork.

import type { IncomingMessage } from 'node:http';
import { setRequestError, setRoute } from './node.js';

interface HonoRoute {
  path?: unknown;
  handler?: unknown;
}

interface HonoContextLike {
  env?: unknown;
  error?: unknown;
  res?: { status?: number };
  req: object;
}

/** Hono middleware. */
export function promforkHono() {
  const self = async function promforkHono(c: HonoContextLike, next: () => Promise<void>): Promise<void> {
    await next();
    try {
      const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
      if (!incoming || typeof incoming !== 'object') return;
      // The label is read for failed requests only: successful ones skip the route lookup.
      const failed = c.error !== undefined || (c.res?.status ?? 0) >= 500;
      if (!failed) return;
      const path = answeringRoutePath(c.req, self);
      if (path !== null) setRoute(incoming, path);
      setRequestError(incoming, c.error);
    } catch {
      // never fail the request for metrics
    }
  };
  return self;
}

/** The path of the route whose handler answered; null when it was this middleware itself (nothing matched). */
function answeringRoutePath(req: object, self: unknown): string | null {
  // `matchedRoutes`/`routeIndex` are HonoRequest's own (what hono/route's routePath() reads): after the chain
  // ran, routeIndex points at the last handler dispatched.
  const r = req as { matchedRoutes?: HonoRoute[]; routeIndex?: number };
  const index = r.routeIndex;
  if (typeof index !== 'number') return null;
  const route = r.matchedRoutes?.[index];
  if (!route || route.handler === self || typeof route.path !== 'string') return null;
  return route.path;
}
