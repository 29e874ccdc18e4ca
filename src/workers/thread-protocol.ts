// The messages between a thread worker's main thread (thread-pool.ts) and its handler threads
// (thread-entry.ts), and the flow-control rule both sides of a connection follow.
//
// A connection is a raw byte pipe: the client socket stays in the main thread, its bytes travel to the
// thread (which runs Node's own HTTP parser on a socket-like Duplex, thread-socket.ts) and the thread's
// response bytes travel back. Each direction is credit-based: a sender may have at most WINDOW bytes not yet
// acknowledged; the receiver acknowledges bytes once its consumer took them (the thread's HTTP parser, or
// the client socket's kernel buffer), in batches of at least ACK_BATCH bytes. A sender that hits the window
// stops (the main thread pauses the client socket; the thread delays its write callback), so a 50 MB upload
// or download is never buffered whole, in either thread.

import type { Settings } from '../config/types.js';
import type { MetricFamily } from '../store/snapshot.js';

/** Bytes a sender may have in flight on one connection before it waits for an acknowledgement. */
export const WINDOW = 1024 * 1024;
/**
 * Acknowledgements are batched: at least this many bytes. No deadlock: a blocked sender has WINDOW bytes
 * unacknowledged, so the receiver holds more than WINDOW - ACK_BATCH of them unconsumed (more than its
 * consumer's high-water mark), and it acknowledges when its consumer drains them.
 */
export const ACK_BATCH = 128 * 1024;

/**
 * Response bytes travel in ArrayBuffers of CHUNK bytes that go back and forth (thread-socket.ts's pool): the
 * main thread returns each one, with the acknowledgement, once the client socket has written it. Without
 * this, every response byte would leave a dead buffer in the main thread, whose isolate allocates so little
 * that its garbage collector would let tens of MB of them pile up during one large download. Writes smaller
 * than POOL_MIN are copied into a buffer of their size (a small response does not hold a chunk).
 */
export const CHUNK = 64 * 1024;
export const POOL_MIN = 8 * 1024;

/** Layout of the SharedArrayBuffer of counters (BigInt64 slots: a process may serve more than 2^31 requests). */
export const COUNTER_REQUESTS = 0;
/** Slot of thread `i`'s requests in flight. */
export const counterInflight = (slot: number): number => 1 + slot;
export const counterSlots = (threads: number): number => 1 + threads;

/** What a handler thread gets at start (`workerData`). */
export interface ThreadData {
  slot: number;
  settings: Settings;
  configFile: string | null;
  /** Load the config file's preRequest/postRequest hooks (the worker process has some). */
  requestHooks: boolean;
  /** Report each request's start (the worker class overrides `requestStarted`). */
  reportStarts: boolean;
  /** Process-wide counters (BigInt64Array over a SharedArrayBuffer). */
  counters: SharedArrayBuffer;
  maxRequests: number;
  pid: number;
  ppid: number;
  age: number;
  seat: number;
}

/** Peer addresses of a client connection, for `req.socket` in the thread. */
export interface ConnInfo {
  remoteAddress?: string;
  remotePort?: number;
  remoteFamily?: string;
  localAddress?: string;
  localPort?: number;
}

/** An error as it crosses threads: its class name (for `error_type`), message and stack. */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
}

/** What the main thread needs to account a request the thread served (or lost in a crash). */
export interface RequestReport {
  method?: string;
  url?: string;
  status: number;
  /** The app's time, monotonic, in nanoseconds. */
  ns: number;
  error?: WireError;
  /** Failed requests only: what the `endpoint` label is computed from. */
  headers?: Record<string, string | string[] | undefined>;
  route?: { path: string; baseUrl?: string };
  promforkRoute?: string;
  /** The formatted access-log line, when the access log is on. */
  access?: string;
}

export type MainToThread =
  | { t: 'conn'; id: number; info: ConnInfo }
  | { t: 'data'; id: number; buf: Uint8Array }
  /** `n` response bytes written to the client; `bufs`: the CHUNK buffers that carried them, to reuse. */
  | { t: 'ack'; id: number; n: number; bufs?: ArrayBuffer[] }
  /** The client closed its sending side. */
  | { t: 'end'; id: number }
  /** The client connection is gone. */
  | { t: 'close'; id: number }
  /** Graceful shutdown: no more keep-alive, close idle connections. */
  | { t: 'drain' }
  /** Answer `metrics` with the app's prom-client families. */
  | { t: 'collect'; id: number };

export type ThreadToMain =
  | { t: 'ready' }
  | { t: 'boot-error'; code: string | null; error: WireError; cause?: WireError }
  | { t: 'data'; id: number; buf: Uint8Array }
  | { t: 'ack'; id: number; n: number }
  /** The thread ended its side: flush what was sent, then close. */
  | { t: 'end'; id: number }
  /** The thread destroyed the connection (after an `end` when it closed it cleanly). */
  | { t: 'close'; id: number }
  | { t: 'start'; method?: string; url?: string }
  | { t: 'done'; report: RequestReport }
  /** The request that reached max-requests started. */
  | { t: 'maxed' }
  | { t: 'log'; level: 'debug' | 'info' | 'warning' | 'error' | 'critical'; msg: string; error?: WireError }
  | { t: 'metrics'; id: number; families: MetricFamily[] }
  /** The thread is dying: its requests in flight (never answered) and why. */
  | { t: 'dying'; inflight: RequestReport[]; error: WireError };

/**
 * Messages for the other side, sent once per event-loop turn: under load one postMessage (one wake-up of the
 * other thread) carries the messages of many connections. A single message goes as itself, several as an
 * array; the receiver handles both. Order is kept.
 */
export class Outbox<M> {
  private msgs: M[] = [];
  private transfer: ArrayBuffer[] = [];
  private scheduled = false;

  constructor(private readonly sink: (msg: M | M[], transfer: ArrayBuffer[]) => void) {}

  post(msg: M, transfer?: ArrayBuffer[]): void {
    this.msgs.push(msg);
    if (transfer) for (const t of transfer) this.transfer.push(t);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Send what is queued now (before the thread exits). */
  flush(): void {
    this.scheduled = false;
    if (this.msgs.length === 0) return;
    const msgs = this.msgs;
    const transfer = this.transfer;
    this.msgs = [];
    this.transfer = [];
    this.sink(msgs.length === 1 ? msgs[0]! : msgs, transfer);
  }
}

/** The class name an error is counted under (`error_type`), as `errorType` in worker-metrics.ts. */
export function toWireError(err: unknown): WireError {
  if (err instanceof Error) {
    return { name: err.constructor?.name || err.name || 'Error', message: err.message, stack: err.stack };
  }
  return { name: typeof err, message: String(err) };
}

const classes = new Map<string, new (message: string) => Error>();

/**
 * An Error whose class name is the original's, so that `error_type` (the class name) and the error log
 * (the original stack) are the same as if the request had been served in this thread.
 */
export function fromWireError(wire: WireError): Error {
  let cls = classes.get(wire.name);
  if (!cls) {
    // A computed key names the class: `new cls().constructor.name === wire.name`.
    cls = { [wire.name]: class extends Error {} }[wire.name]!;
    Object.defineProperty(cls.prototype, 'name', { value: wire.name, writable: true, configurable: true });
    if (classes.size < 1000) classes.set(wire.name, cls);
  }
  const err = new cls(wire.message);
  if (wire.stack) err.stack = wire.stack;
  return err;
}
