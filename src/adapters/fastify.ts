// Fastify: `app.register(promforkFastify)`. Fastify matches routes on its own request object, so onRequest
// copies the route template (`request.routeOptions.url`, prefix included) onto the Node request, and onError
// hands over the error Fastify answers itself (a 500 from a thrown handler gets its class as `error_type`).
// `skip-override` makes the hooks apply to the whole app, as fastify-plugin would (without depending on it).
// Structural types only: Fastify is not a dependency of promfork.

import type { IncomingMessage } from 'node:http';
import { setRequestError, setRoute } from './node.js';

interface FastifyRequestLike {
  raw: IncomingMessage;
  routeOptions?: { url?: unknown };
}

type Done = (err?: Error) => void;

interface FastifyInstanceLike {
  addHook(name: 'onRequest', hook: (request: FastifyRequestLike, reply: unknown, done: Done) => void): unknown;
  addHook(name: 'onError', hook: (request: FastifyRequestLike, reply: unknown, error: unknown, done: Done) => void): unknown;
}

function onRequest(request: FastifyRequestLike, _reply: unknown, done: Done): void {
  try {
    const url = request.routeOptions?.url; // undefined for the 404 handler
    if (typeof url === 'string') setRoute(request.raw, url);
  } catch {
    // never fail the request for metrics
  }
  done();
}

function onError(request: FastifyRequestLike, _reply: unknown, error: unknown, done: Done): void {
  try {
    setRequestError(request.raw, error);
  } catch {
    // as above
  }
  done();
}

/** The Fastify plugin (callback style: no promise per request). */
export const promforkFastify = Object.assign(
  function promforkFastify(app: FastifyInstanceLike, _opts: unknown, done: Done): void {
    app.addHook('onRequest', onRequest);
    app.addHook('onError', onError);
    done();
  },
  { [Symbol.for('skip-override')]: true },
);
