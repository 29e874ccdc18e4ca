// The http.Server options of every worker class (the async and sync workers' server, each thread's server of
// the thread worker): how long an idle keep-alive connection and a connection whose request head has not
// arrived are kept.
// - keepAliveTimeout: --keep-alive.
// - headersTimeout: the whole request head must arrive within --timeout seconds of the connection or of the
//   previous response (60 s when --timeout is 0), and never less than --keep-alive + 1 s, which Node requires.
// - requestTimeout: Node's 300 s for a whole request, or the head's deadline when that is longer.
//   A client that sends nothing, or trickles its head, is closed then (408 when it sent part of a head), and
//   never counts as a request: a sync worker is not occupied by it.
// - connectionsCheckingInterval: Node checks that deadline on a timer (30 s by default, which let an idle
//   client stay up to 90 s); once a second keeps the deadline within a second.

import type { Server, ServerOptions } from 'node:http';
import type { Settings } from '../config/types.js';

export const CONNECTIONS_CHECK_MS = 1000;

export function httpServerOptions(cfg: Pick<Settings, 'keepalive' | 'timeout'>): ServerOptions {
  const keepAliveMs = Math.round(cfg.keepalive * 1000);
  const headerMs = cfg.timeout > 0 ? Math.round(cfg.timeout * 1000) : 60_000;
  const headersTimeout = Math.max(headerMs, keepAliveMs + 1000);
  return {
    keepAliveTimeout: keepAliveMs,
    headersTimeout,
    // Node's default (300 s) for the whole request, raised when the head's deadline is longer (Node requires it).
    requestTimeout: Math.max(300_000, headersTimeout),
    connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
  };
}

/**
 * On a graceful stop, idle keep-alive connections are closed after this grace rather than at once: a
 * client under load sends its next request on them within it, which is answered with `Connection: close`
 * (so it never writes into a connection we are closing); the ones still idle then are closed.
 */
export const IDLE_CLOSE_GRACE_MS = 300;

export function closeIdleConnectionsSoon(server: Server): void {
  setTimeout(() => server.closeIdleConnections(), IDLE_CLOSE_GRACE_MS).unref();
}
