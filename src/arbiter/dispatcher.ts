// Connections the primary itself accepts: only from a listener whose bind a reload removed, while it is
// drained (listener.ts). Workers accept everything else from the listening sockets themselves. Each
// connection goes to a dispatchable worker in turn; with none, it waits here until one boots.

import type { Socket } from 'node:net';
import type { WorkerRecord } from './worker-record.js';

export class Dispatcher {
  private readonly queue: Socket[] = [];
  private next = 0;

  constructor(private readonly workers: () => Iterable<WorkerRecord>) {}

  get pending(): number {
    return this.queue.length;
  }

  add(socket: Socket): void {
    // A queued socket can be reset by its client before a worker takes it; nothing to do then.
    socket.on('error', () => socket.destroy());
    this.queue.push(socket);
    this.pump();
  }

  /** Hand out queued connections while a worker can take them. */
  pump(): void {
    while (this.queue.length > 0) {
      const socket = this.queue[0]!;
      if (socket.destroyed) {
        this.queue.shift();
        continue;
      }
      const candidates = [...this.workers()].filter((w) => w.dispatchable);
      if (candidates.length === 0) return;
      const worker = candidates[this.next++ % candidates.length]!;
      this.queue.shift();
      worker.child!.send({ t: 'conn' }, socket, { keepOpen: false }, (err) => {
        // The worker went away before it got the socket: give the connection to another one.
        if (err && !socket.destroyed) {
          this.queue.unshift(socket);
          setImmediate(() => this.pump());
        }
      });
    }
  }

  /** Drop every queued connection (the primary is stopping). */
  closeAll(): void {
    for (const socket of this.queue.splice(0)) socket.destroy();
  }
}

/**
 * Node keeps a sent socket open in the primary until the child acknowledges it (`_pendingMessage`), and
 * queues later ones (`_handleQueue`). A child killed before acknowledging leaves those clients hanging
 * forever: close them, so the clients see a reset at once (as with a worker that dies mid-request).
 * Handles for which `keep` is true (the primary's listening sockets, sent to workers) stay open.
 * These are internals of node:child_process (stable since Node 0.12); missing fields are ignored.
 */
export function releaseUnacknowledgedSockets(child: unknown, keep: (handle: unknown) => boolean): number {
  const c = child as { _pendingMessage?: { handle?: unknown } | null; _handleQueue?: { handle?: unknown }[] | null };
  const handles = [c._pendingMessage?.handle, ...(c._handleQueue ?? []).map((m) => m.handle)];
  let released = 0;
  for (const h of handles) {
    if (!h || keep(h)) continue;
    const handle = h as { destroy?: () => void; close?: () => void };
    if (typeof handle.destroy === 'function') handle.destroy();
    else if (typeof handle.close === 'function') handle.close();
    else continue;
    released++;
  }
  if (c._pendingMessage) c._pendingMessage = null;
  if (c._handleQueue) c._handleQueue = [];
  return released;
}
