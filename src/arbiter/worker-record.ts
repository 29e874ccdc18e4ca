// The primary's view of one worker process (Gunicorn's Worker object in the master).
// This is the `worker` that primary-side hooks (preFork, childExit) receive.

import type { ChildProcess } from 'node:child_process';
import type { WorkerKind } from '../workers/base-worker.js';
import type { RestartReason, WorkerState } from '../metrics/master-metrics.js';

/** A worker's answer to a flush request (see `flushed` in src/ipc.ts). */
export interface FlushAnswer {
  seq: number;
  current: boolean;
}

export class WorkerRecord {
  /** Set once forked; undefined while preFork runs. */
  pid = 0;
  child: ChildProcess | null = null;
  booted = false;
  /** Timed out: SIGABRT sent; SIGKILL follows on the next tick if it is still there. */
  aborted = false;
  /** Will take no new connections: it said it is quitting, or we told it to stop. */
  quitting = false;
  /** Marked by a reload (HUP): stopped once its replacement has booted. */
  retiring = false;
  /** The generation of the listening sockets it was given (the arbiter's listenerGen). */
  listenerGen = -1;
  /** Sync workers: a request is in progress since `busySince` (performance.now()), as its heartbeats say. */
  busy = false;
  busySince = 0;
  /** performance.now() of the last message from the worker. */
  lastBeat: number;
  readonly spawnedAt = Date.now();
  state: WorkerState = 'booting';
  /** Unix second at which the worker entered `state`. */
  stateSince = Math.floor(Date.now() / 1000);
  /** Why it is stopping; set by whoever stopped it first. `scale-down` workers are not replaced. */
  stopReason: RestartReason | 'scale-down' | null = null;
  /** The worker's cumulative count of failed snapshot writes, as last reported. */
  storeErrors = 0;
  /**
   * Flush requests not answered yet, by id, with when they were sent: one older than the scrape deadline means the
   * worker is not answering (blocked), and scrapes stop waiting for it until it answers.
   */
  readonly pendingFlushes = new Map<number, { sentAt: number; done: (answer: FlushAnswer | null) => void }>();

  constructor(
    readonly age: number,
    readonly seat: number,
    readonly kind: WorkerKind,
    readonly maxRequests: number,
  ) {
    this.lastBeat = performance.now();
  }

  setState(state: WorkerState): void {
    if (state === this.state) return;
    this.state = state;
    this.stateSince = Math.floor(Date.now() / 1000);
  }

  /** Counted towards the target number of workers. */
  get active(): boolean {
    return !this.quitting && !this.retiring;
  }

  get dispatchable(): boolean {
    return this.booted && !this.quitting && !this.aborted && this.child !== null && this.child.connected;
  }

  /** Signals the primary sent it, so that its exit is told apart from a crash or the OOM killer. */
  readonly sent = new Set<NodeJS.Signals>();

  kill(signal: NodeJS.Signals): boolean {
    if (!this.pid) return false;
    try {
      process.kill(this.pid, signal);
      this.sent.add(signal);
      return true;
    } catch {
      return false;
    }
  }
}
