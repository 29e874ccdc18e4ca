// The bounded `endpoint` label: the framework's route template when the request carries one, else the
// path with id-like segments replaced, capped at `cap` distinct values (then `__other__`).
// Computed only for failed requests, so successful ones pay nothing for it.

import type { IncomingMessage } from 'node:http';

export const OTHER = '__other__';

/** Set by promfork's framework adapters (or the app) on the Node request: the route template. */
export const ROUTE_PROPERTY = 'promforkRoute';

/**
 * Set by the adapters on the Node request: the error a framework caught and answered itself (so the worker
 * never saw it). It names `error_type` when the response is a 5xx.
 */
export const ERROR_PROPERTY = 'promforkError';

const ID_SEGMENT =
  /^(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}|(?=[^/]*\d)[A-Za-z0-9_-]{20,})$/i;

export function routeTemplate(req: IncomingMessage): string | null {
  const r = req as IncomingMessage & { [ROUTE_PROPERTY]?: unknown; route?: { path?: unknown }; baseUrl?: unknown };
  if (typeof r[ROUTE_PROPERTY] === 'string') return r[ROUTE_PROPERTY];
  // Express: req.baseUrl + req.route.path once a route matched.
  if (r.route && typeof r.route.path === 'string') {
    return `${typeof r.baseUrl === 'string' ? r.baseUrl : ''}${r.route.path}`;
  }
  return null;
}

export function normalizePath(url: string | undefined): string {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const segments = path.split('/');
  for (let i = 0; i < segments.length; i++) {
    if (ID_SEGMENT.test(segments[i]!)) segments[i] = ':id';
  }
  const out = segments.join('/');
  return out.length > 200 ? `${out.slice(0, 200)}...` : out;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE']);

/** The `method` label, bounded: unusual methods are `OTHER`. */
export function methodLabel(method: string | undefined): string {
  return method && METHODS.has(method) ? method : 'OTHER';
}

export class EndpointLabeler {
  private readonly seen = new Set<string>();

  constructor(
    private readonly cap: number,
    private readonly custom?: (req: IncomingMessage) => string | null | undefined,
  ) {}

  label(req: IncomingMessage): string {
    let value: string | null | undefined = null;
    if (this.custom) {
      try {
        value = this.custom(req);
      } catch {
        value = null; // a failing label function never fails the request's accounting
      }
    }
    value = value ?? routeTemplate(req) ?? normalizePath(req.url);
    if (this.seen.has(value)) return value;
    if (this.seen.size >= this.cap) return OTHER;
    this.seen.add(value);
    return value;
  }
}
