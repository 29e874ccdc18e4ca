// Messages between the primary and its workers over the fork() IPC channel.
// Kept tiny and flat: heartbeats must never queue behind bulky traffic.

import type { Settings } from './config/types.js';

/** What a worker needs to boot; sent by the primary as the first message. */
export interface WorkerSpec {
  settings: Settings;
  configFile: string | null;
  age: number;
  seat: number;
  maxRequests: number;
  ppid: number;
  /** Resolved module path or builtin name of the worker class. */
  workerClass: string;
}

export type PrimaryToWorker =
  | { t: 'spec'; spec: WorkerSpec }
  /**
   * A listening socket to accept from (`i` of `n`, the primary's current binds); the handle travels with
   * the message. Sent when the worker has booted, and again when it asks (`listen`).
   */
  | { t: 'lsock'; i: number; n: number; backlog: number }
  /** A client connection the primary accepted (only while it drains a removed bind); the socket is the handle. */
  | { t: 'conn' }
  /** The primary will send no more connections: the worker may exit once drained. */
  | { t: 'drained' }
  /** Write a metrics snapshot now and answer `flushed` with the same id (a scrape is waiting). */
  | { t: 'flush'; id: number; /** Date.now() + the scrape's deadline: past it, nobody waits for the answer. */ until?: number }
  /** The primary got SIGUSR1: reopen the log files. */
  | { t: 'reopen' };

export type WorkerToPrimary =
  | { t: 'booted' }
  /**
   * Liveness: sent on a timer by the worker's event loop. Sync workers add `busyMs`, how long the request
   * in progress has run (0: none), which the primary holds against --timeout.
   */
  | { t: 'hb'; storeErrors?: number; busyMs?: number }
  /** Send the listening sockets again: the worker closed its copies at its connection cap and is below it now. */
  | { t: 'listen' }
  /**
   * Answer to `flush`: `seq` is the sequence number of the worker's snapshot now in the store. `current`: it holds
   * everything counted so far (the worker was idle and flushed, or nothing changed); false when the worker was busy
   * and answered at once with what it pushed last (or could not write).
   */
  | { t: 'flushed'; id: number; ok: boolean; seq: number; storeErrors: number; current: boolean }
  /** The worker persisted snapshot `seq` on its own schedule: the primary may read it now. */
  | { t: 'pushed'; seq: number }
  /** The worker is shutting down (max-requests, TERM, parent gone): send it nothing more. */
  | { t: 'quit'; reason: 'max-requests' | 'term' | 'parent' };

export function isMessage(value: unknown): value is { t: string } {
  return typeof value === 'object' && value !== null && typeof (value as { t?: unknown }).t === 'string';
}
