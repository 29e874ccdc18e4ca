// Koa: `app.use(promforkKoa())` before the router. After the downstream middleware (also when it throws) it
// copies @koa/router's matched route template (`ctx._matchedRoute`, prefixes included) onto the Node request,
// and on a throw hands the error over before rethrowing it to Koa, which answers it (a 500 gets the error's
// class as `error_type`; a thrown 4xx such as ctx.throw(404) is not a failure).
// Structural types only: Koa is not a dependency of promfork.

import type { IncomingMessage } from 'node:http';
import { setRequestError, setRoute } from './node.js';

interface KoaContextLike {
  req: IncomingMessage;
  _matchedRoute?: unknown;
}

/** Koa middleware. */
export function promforkKoa() {
  return async function promforkKoa(ctx: KoaContextLike, next: () => Promise<unknown>): Promise<void> {
    try {
      await next();
    } catch (err) {
      setRequestError(ctx.req, err);
      throw err;
    } finally {
      recordRoute(ctx);
    }
  };
}

function recordRoute(ctx: KoaContextLike): void {
  try {
    // A RegExp route has no template: the label falls back to the normalised path.
    if (typeof ctx._matchedRoute === 'string') setRoute(ctx.req, ctx._matchedRoute);
  } catch {
    // never fail the request for metrics
  }
}
