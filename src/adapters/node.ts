// For plain node:http apps (and the other adapters): hand the route template and a caught error to promfork's
// request accounting, as properties of the Node request. Both are plain property writes: they never throw
// into the request, and cost nothing worth measuring.

import type { IncomingMessage } from 'node:http';
import { ERROR_PROPERTY, ROUTE_PROPERTY } from '../metrics/endpoint.js';

type Carrier = { [ROUTE_PROPERTY]?: unknown; [ERROR_PROPERTY]?: unknown };

/** The `endpoint` label of this request, e.g. `setRoute(req, '/users/:id')`. The last call wins. */
export function setRoute(req: IncomingMessage, template: string): void {
  try {
    (req as Carrier)[ROUTE_PROPERTY] = template;
  } catch {
    // a frozen or odd request object: the label falls back to the normalised path
  }
}

/**
 * The error the app caught and answered itself (e.g. with a JSON 500): when the response is a 5xx, its class
 * names `error_type` instead of `http_<status>`. The first error wins (the cause, not a later wrapper).
 */
export function setRequestError(req: IncomingMessage, error: unknown): void {
  if (error === null || error === undefined) return;
  try {
    const r = req as Carrier;
    if (r[ERROR_PROPERTY] === undefined) r[ERROR_PROPERTY] = error;
  } catch {
    // as above
  }
}

/** The route already handed over, if any (the adapters do not overwrite a more precise one). */
export function hasRoute(req: IncomingMessage): boolean {
  return typeof (req as Carrier)[ROUTE_PROPERTY] === 'string';
}
