// The main thread's side of a thread worker: a pool of `threads` handler threads (thread-entry.ts), the
// client connections piped to them as raw bytes, and the replacement of a thread that dies.
//
// Why raw bytes and not re-serialised requests: the thread runs Node's own HTTP parser on a socket-like
// Duplex (thread-socket.ts), so every request-listener app works unchanged (Express, Koa, fetch-style apps
// through loadApp), bodies stream both ways under flow control (thread-protocol.ts), and keep-alive,
// pipelining, `Expect: 100-continue` and the parser's limits are Node's. The main thread parses nothing: it
// copies bytes between the client socket and a MessagePort, and counts each request when the thread reports
// it finished.
//
// Why a connection stays on one thread for its life: the parser's state (a half-received request, a
// pipelined one) lives in that thread, so moving a connection between requests would need a hand-back
// protocol for no gain under the usual load (many short connections, or keep-alive clients each with their
// own connection). A new connection goes to the least-loaded thread: connections first, then requests in
// flight (read from shared counters, so it is current even while the thread is busy), ties rotating.
// `workerConnections` (enforced by the primary) caps the open connections of the process, `threads` caps how
// many handlers run JavaScript at once; an I/O-bound async handler does not hold its thread while it waits.

import type { Socket } from 'node:net';
import { SHARE_ENV, Worker as Thread } from 'node:worker_threads';
import { PromforkError, type ErrorCode } from '../errors.js';
import { RetiredTotals } from '../exporter/merge.js';
import type { MetricFamily } from '../store/snapshot.js';
import {
  ACK_BATCH,
  CHUNK,
  COUNTER_REQUESTS,
  Outbox,
  WINDOW,
  counterInflight,
  counterSlots,
  fromWireError,
  toWireError,
  type MainToThread,
  type RequestReport,
  type ThreadData,
  type ThreadToMain,
  type WireError,
} from './thread-protocol.js';

const ENTRY = new URL('./thread-entry.js', import.meta.url);

/**
 * prom-client's default metrics that describe the whole process (CPU, memory, file descriptors): every thread
 * that collects default metrics reports the same values, so they are not summed over threads. (A prefix set
 * with `collectDefaultMetrics({ prefix })` comes before these names.) The `nodejs_*` ones are per thread (heap,
 * event loop, handles, GC) and are summed or aggregated like any family.
 */
const PROCESS_WIDE =
  /process_(?:cpu_user_seconds_total|cpu_system_seconds_total|cpu_seconds_total|resident_memory_bytes|virtual_memory_bytes|heap_bytes|open_fds|max_fds|start_time_seconds)$/;

export interface PoolLog {
  debug(msg: string, err?: unknown): void;
  info(msg: string, err?: unknown): void;
  warning(msg: string, err?: unknown): void;
  error(msg: string, err?: unknown): void;
  critical(msg: string, err?: unknown): void;
}

export interface PoolEvents {
  /** A request started (only when the data asks threads to report starts). */
  started(method: string | undefined, url: string | undefined): void;
  /** A request finished in a thread, or was lost with its thread (then `error` is set and status is 500). */
  finished(report: RequestReport): void;
  /** The request that reached max-requests started. */
  maxed(): void;
  /** A replacement thread could not load the app: the process cannot serve any more. */
  fatal(err: Error): void;
}

export interface PoolOptions {
  size: number;
  data: Omit<ThreadData, 'slot' | 'counters'>;
  log: PoolLog;
  events: PoolEvents;
}

/** One client connection piped to a thread. */
class Conn {
  /** Request bytes sent to the thread, and acknowledged by it. */
  sent = 0;
  peerAcked = 0;
  paused = false;
  /** Response bytes written to the client and not yet acknowledged, and the CHUNK buffers that carried them. */
  private written = 0;
  private returned: ArrayBuffer[] = [];
  /** The thread closed it: nothing to tell the thread on close. */
  closedByThread = false;
  closed = false;

  constructor(
    readonly id: number,
    readonly socket: Socket,
    readonly thread: ThreadHandle,
  ) {}

  /** Response bytes from the thread: write them; acknowledge them (and return their buffer) once written. */
  toClient(buf: Uint8Array): void {
    const ab = buf.buffer as ArrayBuffer;
    const n = buf.byteLength;
    const written = () => {
      this.written += n;
      if (ab.byteLength === CHUNK) this.returned.push(ab);
      this.ack(false);
    };
    if (this.socket.destroyed) written();
    else this.socket.write(Buffer.from(ab, buf.byteOffset, n), written);
  }

  /** Acknowledge in batches (see thread-protocol.ts); `all` when the connection is gone (buffers go back). */
  ack(all: boolean): void {
    const gone = this.closed || this.socket.destroyed;
    if (!all && !gone && this.written < ACK_BATCH) return;
    if (this.written === 0 && this.returned.length === 0) return;
    const bufs = this.returned;
    this.thread.post({ t: 'ack', id: this.id, n: gone ? 0 : this.written, bufs }, bufs);
    this.written = 0;
    this.returned = [];
  }
}

class ThreadHandle {
  readonly thread: Thread;
  readonly conns = new Map<number, Conn>();
  ready = false;
  exited = false;
  /** The last families the thread reported (the app's prom-client metrics in this thread). */
  families: MetricFamily[] = [];
  /** The crash report, when the thread sent one before dying. */
  dying: { inflight: RequestReport[]; error: WireError } | null = null;
  readonly collects = new Map<number, () => void>();
  /** The answer to the collection in progress. */
  answer: Promise<void> | null = null;
  private readonly outbox: Outbox<MainToThread>;

  constructor(
    readonly slot: number,
    data: ThreadData,
  ) {
    // SHARE_ENV: the thread sees the process's environment (a config file may have set it).
    this.thread = new Thread(ENTRY, { workerData: data, env: SHARE_ENV });
    this.outbox = new Outbox((msg, transfer) => {
      if (!this.exited) this.thread.postMessage(msg, transfer);
    });
  }

  post(msg: MainToThread, transfer?: ArrayBuffer[]): void {
    if (!this.exited) this.outbox.post(msg, transfer);
  }
}

export class ThreadPool {
  private readonly handles: (ThreadHandle | null)[];
  private readonly counters: BigInt64Array;
  private readonly sharedCounters: SharedArrayBuffer;
  private readonly retired = new RetiredTotals();
  private nextConn = 0;
  private nextCollect = 0;
  private rotate = 0;
  private draining = false;
  private stopped = false;
  /** Threads that died and were replaced. */
  restarts = 0;

  constructor(private readonly opts: PoolOptions) {
    this.sharedCounters = new SharedArrayBuffer(8 * counterSlots(opts.size));
    this.counters = new BigInt64Array(this.sharedCounters);
    this.handles = new Array<ThreadHandle | null>(opts.size).fill(null);
  }

  /** Requests started in this process, over all threads (counts towards max-requests). */
  get requestsStarted(): number {
    return Number(Atomics.load(this.counters, COUNTER_REQUESTS));
  }

  /** Start every thread and wait until each has loaded the app; a boot error is thrown as the process's. */
  async start(): Promise<void> {
    const booted = this.handles.map((_, slot) => this.spawn(slot));
    const results = await Promise.allSettled(booted);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      this.stopped = true;
      await Promise.all(this.handles.map((h) => h?.thread.terminate()));
      throw failed.reason;
    }
  }

  /** Pipe a client connection to a thread. */
  assign(socket: Socket): void {
    const handle = this.pick();
    if (!handle) {
      socket.destroy();
      return;
    }
    const conn = new Conn(++this.nextConn, socket, handle);
    handle.conns.set(conn.id, conn);
    // The thread's HTTP server decides when to close (it may answer after the client half-closed).
    socket.allowHalfOpen = true;
    socket.setNoDelay(true);
    socket.on('data', (buf: Buffer) => this.toThread(conn, buf));
    socket.on('end', () => handle.post({ t: 'end', id: conn.id }));
    socket.on('error', () => {
      // a reset by the client: 'close' follows
    });
    socket.once('close', () => {
      conn.closed = true;
      handle.conns.delete(conn.id);
      if (!conn.closedByThread) handle.post({ t: 'close', id: conn.id });
      conn.ack(true);
    });
    handle.post({
      t: 'conn',
      id: conn.id,
      info: {
        remoteAddress: socket.remoteAddress,
        remotePort: socket.remotePort,
        remoteFamily: socket.remoteFamily,
        localAddress: socket.localAddress,
        localPort: socket.localPort,
      },
    });
    // pauseOnConnect in the primary: nothing has been read yet, start reading here.
    socket.resume();
  }

  /** Graceful shutdown: every thread stops keep-alive and closes its idle connections. */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    for (const h of this.handles) h?.post({ t: 'drain' });
  }

  /**
   * The app's prom-client families of every thread, as parts to merge (summed like workers' parts): each live
   * thread's latest answer (threads that do not answer within `deadlineMs`, e.g. busy with a CPU-bound handler,
   * are represented by their previous answer), and the totals of threads that died (their last answer folded,
   * so counters never go back).
   */
  async collect(deadlineMs: number): Promise<MetricFamily[][]> {
    const live = this.handles.filter((h): h is ThreadHandle => h !== null && h.ready && !h.exited);
    await Promise.all(live.map((h) => this.collectOne(h, deadlineMs)));
    // Process-wide families (prom-client's default process_* metrics) read the same process counters in every
    // thread: taken once, from the first thread that has them, not summed.
    const taken = new Set<string>();
    const parts = [this.retired.families()];
    for (const h of this.handles) {
      if (!h || h.families.length === 0) continue;
      parts.push(
        h.families.filter((f) => {
          if (!PROCESS_WIDE.test(f.name)) return true;
          if (taken.has(f.name)) return false;
          taken.add(f.name);
          return true;
        }),
      );
    }
    return parts.filter((p) => p.length > 0);
  }

  // ---- internals ----

  /** Ask a thread for its families (once: a busy thread is not asked again before it answered), wait at most `deadlineMs`. */
  private collectOne(h: ThreadHandle, deadlineMs: number): Promise<void> {
    if (!h.answer) {
      const id = ++this.nextCollect;
      h.answer = new Promise<void>((resolve) => h.collects.set(id, resolve)).finally(() => {
        h.answer = null;
      });
      h.post({ t: 'collect', id });
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, deadlineMs);
    });
    return Promise.race([h.answer, deadline]).finally(() => clearTimeout(timer));
  }

  /**
   * The least-loaded thread: 2 x its connections + its requests in flight, ties rotating; a booting thread
   * only when no thread is ready. Connections come first, so they stay balanced: a burst of new connections
   * arrives in one turn, before any of their requests is parsed, and counting requests in flight alone would
   * send the whole burst to whichever thread was idle at that instant (measured: one core used of two).
   * Between threads with as many connections, the one without a request running (e.g. not stuck in a long
   * handler) gets it.
   */
  private pick(): ThreadHandle | null {
    const n = this.handles.length;
    let best: ThreadHandle | null = null;
    let bestKey = 0;
    for (let i = 0; i < n; i++) {
      const h = this.handles[(this.rotate + i) % n];
      if (!h || h.exited) continue;
      const load = 2 * h.conns.size + Number(Atomics.load(this.counters, counterInflight(h.slot)));
      const key = (h.ready ? 0 : 1e9) + load;
      if (best === null || key < bestKey) {
        best = h;
        bestKey = key;
      }
    }
    this.rotate = (this.rotate + 1) % Math.max(1, n);
    return best;
  }

  private toThread(conn: Conn, buf: Buffer): void {
    // Always a copy, transferred. Moving the socket's own read buffer would save a 64 KiB memcpy, but its
    // memory, allocated by this thread's allocator and dying in the other thread, is not counted by that
    // thread's garbage collector: a 1 GB upload to a CPU-busy handler kept ~300 MB of dead buffers alive.
    // Copied into a buffer allocated here (and read buffers dying here, as in any Node server), both
    // collectors see what they hold.
    const view = new Uint8Array(buf);
    conn.thread.post({ t: 'data', id: conn.id, buf: view }, [view.buffer]);
    conn.sent += buf.byteLength;
    if (!conn.paused && conn.sent - conn.peerAcked >= WINDOW) {
      conn.paused = true;
      conn.socket.pause();
    }
  }

  private spawn(slot: number): Promise<void> {
    Atomics.store(this.counters, counterInflight(slot), 0n);
    const handle = new ThreadHandle(slot, { ...this.opts.data, slot, counters: this.sharedCounters });
    this.handles[slot] = handle;
    const { thread } = handle;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err: Error | null) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve();
      };
      const onMessage = (msg: ThreadToMain) => {
        if (msg.t === 'ready') {
          handle.ready = true;
          settle(null);
        } else if (msg.t === 'boot-error') {
          settle(bootError(msg.code, msg.error, msg.cause));
        } else {
          this.onMessage(handle, msg);
        }
      };
      thread.on('message', (msg: ThreadToMain | ThreadToMain[]) => {
        if (Array.isArray(msg)) for (const m of msg) onMessage(m);
        else onMessage(msg);
      });
      thread.on('error', (err) => {
        // An uncaught exception the thread's own handler did not see (e.g. while it evaluated its modules).
        handle.dying ??= { inflight: [], error: toWireError(err) };
      });
      thread.once('exit', (code) => {
        handle.exited = true;
        settle(new Error(`worker thread ${slot} exited with code ${code} while loading the app`));
        if (handle.ready) this.onThreadExit(handle, code);
      });
    });
  }

  private onMessage(h: ThreadHandle, msg: ThreadToMain): void {
    switch (msg.t) {
      case 'data': {
        const conn = h.conns.get(msg.id);
        if (conn) conn.toClient(msg.buf);
        else if (msg.buf.buffer.byteLength === CHUNK) h.post({ t: 'ack', id: msg.id, n: 0, bufs: [msg.buf.buffer as ArrayBuffer] }, [msg.buf.buffer as ArrayBuffer]);
        return;
      }
      case 'ack': {
        const conn = h.conns.get(msg.id);
        if (!conn) return;
        conn.peerAcked += msg.n;
        if (conn.paused && conn.sent - conn.peerAcked < WINDOW) {
          conn.paused = false;
          conn.socket.resume();
        }
        return;
      }
      case 'done':
        this.opts.events.finished(msg.report);
        return;
      case 'end':
        h.conns.get(msg.id)?.socket.end();
        return;
      case 'close': {
        const conn = h.conns.get(msg.id);
        if (!conn) return;
        conn.closedByThread = true;
        h.conns.delete(msg.id);
        closeAfterFlush(conn.socket);
        return;
      }
      case 'start':
        this.opts.events.started(msg.method, msg.url);
        return;
      case 'maxed':
        this.opts.events.maxed();
        return;
      case 'log': {
        const text = msg.error ? fromWireError(msg.error) : undefined;
        this.opts.log[msg.level](msg.msg, text);
        return;
      }
      case 'metrics': {
        h.families = msg.families;
        const done = h.collects.get(msg.id);
        h.collects.delete(msg.id);
        done?.();
        return;
      }
      case 'dying':
        h.dying = { inflight: msg.inflight, error: msg.error };
        return;
    }
  }

  /**
   * A thread died (an uncaught exception, process.exit() in the app, an out-of-memory kill): its connections are
   * closed, its requests in flight are counted as failed (they will never be answered), its app metrics are
   * folded into the retired totals, and a new thread takes its slot. The process goes on serving.
   */
  private onThreadExit(h: ThreadHandle, code: number): void {
    for (const conn of h.conns.values()) {
      conn.closedByThread = true;
      conn.socket.destroy();
    }
    h.conns.clear();
    for (const done of h.collects.values()) done();
    h.collects.clear();
    const reason = h.dying?.error ?? { name: 'WorkerThreadExit', message: `worker thread exited with code ${code}` };
    const reported = h.dying?.inflight ?? [];
    for (const report of reported) this.opts.events.finished(report);
    // Without a crash report (killed outright), the shared counter still says how many were in flight.
    const unreported = Number(Atomics.load(this.counters, counterInflight(h.slot))) - reported.length;
    for (let i = 0; i < unreported; i++) this.opts.events.finished({ status: 500, ns: 0, error: reason });
    // The live threads' process-wide families already count the dead thread's share.
    this.retired.fold(h.families.filter((f) => !PROCESS_WIDE.test(f.name)));
    h.families = [];
    if (this.stopped) return;
    this.restarts++;
    this.opts.log.error(
      `Worker thread ${h.slot} (pid:${process.pid}) died (${reason.name}: ${reason.message}); ` +
        `${reported.length + Math.max(0, unreported)} request(s) in flight lost; replacing it`,
    );
    this.spawn(h.slot).then(
      () => {
        this.opts.log.info(`Worker thread ${h.slot} (pid:${process.pid}) replaced`);
        if (this.draining) this.handles[h.slot]?.post({ t: 'drain' });
      },
      (err: Error) => this.opts.events.fatal(err),
    );
  }
}

/** Close the client socket once every byte the thread sent has gone out. */
function closeAfterFlush(socket: Socket): void {
  if (socket.destroyed) return;
  // Nothing pending and not ended: the thread dropped the connection (keep-alive timeout, idle close, abort).
  if (socket.writableFinished || (socket.writableLength === 0 && !socket.writableEnded)) {
    socket.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  if (!socket.writableEnded) socket.end();
}

function bootError(code: string | null, error: WireError, cause: WireError | undefined): Error {
  if (code) {
    return new PromforkError(code as ErrorCode, error.message, { cause: cause ? fromWireError(cause) : undefined });
  }
  return fromWireError(error);
}
