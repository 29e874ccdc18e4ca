// The graceful drain's first step, shared by the worker process and the thread worker's handler threads:
// close the keep-alive connections that sit between requests, without dropping a request on its way.
//
// Node's server.closeIdleConnections() closes every connection with no request in progress, and that includes
// a connection which has not delivered a single byte yet. A connection reaches a worker only after the
// primary accepted it for this worker, so its first request is on its way or already in the socket's buffer,
// unread: closing it then answers the client with a reset ("socket hang up"), a dropped request on HUP
// (docs/design.md, L5). How wide that window is depends on the Node line: Node 26 reads a handed-over
// socket's first bytes a little later, and HUP under load dropped about one request in three runs.
//
// So while some open connection has read nothing yet, closeIdleConnections() waits: until each such
// connection carried its first request (the worker answers it with `Connection: close`, it is draining), closed,
// or stayed silent for `allowanceMs` (then it is closed: a client that connects and sends nothing gets no more
// than it would get between two keep-alive requests).

import type http from 'node:http';
import type { Duplex } from 'node:stream';

type Conn = Duplex & { bytesRead: number };

export function closeIdleConnectionsSafely(server: http.Server, open: Iterable<Conn>, allowanceMs: number): void {
  const silent = new Set<Conn>();
  for (const c of open) if (c.bytesRead === 0 && !c.destroyed) silent.add(c);
  if (silent.size === 0) return void server.closeIdleConnections();
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    server.off('request', onRequest);
    for (const c of silent) {
      c.off('close', onClose);
      if (c.bytesRead === 0) c.destroy();
    }
    // A connection that read part of a request by now has it in progress: Node leaves it open.
    server.closeIdleConnections();
  };
  const settled = (c: Conn) => {
    if (silent.delete(c) && silent.size === 0) finish();
  };
  // Listeners added after the worker's own, so the response is attached to its socket (not idle) by now.
  const onRequest = (req: http.IncomingMessage) => settled(req.socket as Conn);
  function onClose(this: Conn) {
    settled(this);
  }
  server.on('request', onRequest);
  for (const c of silent) c.once('close', onClose);
  const timer = setTimeout(finish, allowanceMs);
  timer.unref();
}

/** How long a silent connection may stay during a drain: the keep-alive timeout, at least one second. */
export function silentAllowanceMs(keepaliveSeconds: number): number {
  return Math.max(1000, Math.round(keepaliveSeconds * 1000));
}
