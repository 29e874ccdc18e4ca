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

import type { ServerOptions } from 'node:http';
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
 * On a graceful stop, idle keep-alive connections are closed, but only once they have stayed idle for
 * IDLE_CLOSE_AFTER_MS: a client under load sends its next request a moment after each response, and a connection
 * closed in that moment (or whose bytes are still on their way to a thread) would fail that request. Every
 * response after the stop began says `Connection: close`, so a busy connection ends after its next response; one
 * that carries nothing (no response in progress, nothing read) for IDLE_CLOSE_AFTER_MS is not being used and is
 * closed. Only the stopping worker looks, every IDLE_CHECK_MS: nothing runs on the request path.
 */
export const IDLE_CLOSE_AFTER_MS = 1000;
export const IDLE_CHECK_MS = 100;

interface Connection {
  readonly destroyed: boolean;
  readonly bytesRead: number;
  destroy(): void;
}

export function closeIdleConnectionsSoon(connections: () => Iterable<Connection>): void {
  let seen = new Map<Connection, { bytes: number; since: number }>();
  const timer = setInterval(() => {
    const now = performance.now();
    const next = new Map<Connection, { bytes: number; since: number }>();
    for (const c of connections()) {
      if (c.destroyed) continue;
      const last = seen.get(c);
      // Node's http server sets `_httpMessage` to the response in progress on its socket.
      const busy = Boolean((c as { _httpMessage?: unknown })._httpMessage) || (last !== undefined && last.bytes !== c.bytesRead);
      const since = busy || last === undefined ? now : last.since;
      if (!busy && now - since >= IDLE_CLOSE_AFTER_MS) c.destroy();
      else next.set(c, { bytes: c.bytesRead, since });
    }
    seen = next;
  }, IDLE_CHECK_MS);
  timer.unref();
}
