// Admission of client connections to workers, in the primary. Sync workers get a connection only
// when idle (the rest wait here in FIFO order, none refused: the stand-in for the kernel backlog);
// async workers get the least-loaded worker below `workerConnections`.

import type { Socket } from 'node:net';
import type { WorkerRecord } from './worker-record.js';

export class Dispatcher {
  private readonly queue: Socket[] = [];
  private next = 0;

  constructor(
    private readonly workers: () => Iterable<WorkerRecord>,
    private readonly capacity: () => number,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  add(socket: Socket): void {
    // A queued socket can be reset by its client before a worker takes it; nothing to do then.
    socket.on('error', () => socket.destroy());
    this.queue.push(socket);
    this.pump();
  }

  /** Hand out as many queued connections as workers can take now. */
  pump(): void {
    while (this.queue.length > 0) {
      const socket = this.queue[0]!;
      if (socket.destroyed) {
        this.queue.shift();
        continue;
      }
      const worker = this.pick();
      if (!worker) return;
      this.queue.shift();
      this.handOff(worker, socket);
    }
  }

  /** Drop every queued connection (the primary is stopping). */
  closeAll(): void {
    for (const socket of this.queue.splice(0)) socket.destroy();
  }

  private handOff(worker: WorkerRecord, socket: Socket): void {
    if (worker.kind === 'sync') {
      worker.busy = true;
      worker.busySince = performance.now();
    } else {
      worker.conns++;
    }
    worker.child!.send({ t: 'conn' }, socket, { keepOpen: false }, (err) => {
      if (!err) return;
      // The worker went away before it got the socket: give the connection to another one.
      if (worker.kind === 'sync') worker.busy = false;
      else worker.conns--;
      if (!socket.destroyed) {
        this.queue.unshift(socket);
        setImmediate(() => this.pump());
      }
    });
  }

  private pick(): WorkerRecord | null {
    const cap = this.capacity();
    let best: WorkerRecord | null = null;
    const candidates = [...this.workers()];
    const n = candidates.length;
    // Start the scan at a rotating offset so that ties spread across workers.
    for (let i = 0; i < n; i++) {
      const w = candidates[(this.next + i) % n]!;
      if (!w.dispatchable) continue;
      if (w.kind === 'sync') {
        if (!w.busy) {
          this.next = (this.next + i + 1) % n;
          return w;
        }
      } else if (w.conns < cap && (best === null || w.conns < best.conns)) {
        best = w;
      }
    }
    if (best) this.next = (this.next + 1) % Math.max(1, n);
    return best;
  }
}

/**
 * Node keeps a sent socket open in the primary until the child acknowledges it (`_pendingMessage`), and
 * queues later ones (`_handleQueue`). A child killed before acknowledging leaves those clients hanging
 * forever: close them, so the clients see a reset at once (as with a worker that dies mid-request).
 * These are internals of node:child_process (stable since Node 0.12); missing fields are ignored.
 */
export function releaseUnacknowledgedSockets(child: unknown): number {
  const c = child as { _pendingMessage?: { handle?: unknown } | null; _handleQueue?: { handle?: unknown }[] | null };
  const handles = [c._pendingMessage?.handle, ...(c._handleQueue ?? []).map((m) => m.handle)];
  let released = 0;
  for (const h of handles) {
    const handle = h as { destroy?: () => void; close?: () => void } | undefined;
    if (typeof handle?.destroy === 'function') handle.destroy();
    else if (typeof handle?.close === 'function') handle.close();
    else continue;
    released++;
  }
  if (c._pendingMessage) c._pendingMessage = null;
  if (c._handleQueue) c._handleQueue = [];
  return released;
}
