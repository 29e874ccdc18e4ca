// The client connection as a handler thread sees it: a Duplex fed by messages from the main thread,
// which keeps the real socket. The thread's own http.Server takes it as a 'connection', so Node's HTTP
// parser, keep-alive, pipelining and timeouts run unchanged in the thread, and any request-listener app
// (Express included) gets a real IncomingMessage and ServerResponse. Flow control follows
// thread-protocol.ts: response bytes are sent within a window of unacknowledged bytes (the write callback
// waits beyond it, so `res.write()` returns false and the app sees backpressure), and request bytes are
// acknowledged once the HTTP parser took them (so the main thread pauses the client past the window).

import { Duplex } from 'node:stream';
import { ACK_BATCH, CHUNK, POOL_MIN, WINDOW, type ConnInfo, type ThreadToMain } from './thread-protocol.js';

export type Post = (msg: ThreadToMain, transfer?: ArrayBuffer[]) => void;

/** The CHUNK-sized buffers of a thread's responses, back from the main thread once written (thread-protocol.ts). */
export class BufferPool {
  private readonly free: ArrayBuffer[] = [];

  constructor(private readonly max = 64) {}

  take(): ArrayBuffer {
    return this.free.pop() ?? new ArrayBuffer(CHUNK);
  }

  give(bufs: readonly ArrayBuffer[]): void {
    for (const b of bufs) if (b.byteLength === CHUNK && this.free.length < this.max) this.free.push(b);
  }
}

export class PortSocket extends Duplex {
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  readonly remoteFamily: string | undefined;
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly connecting = false;
  readonly pending = false;
  bytesRead = 0;
  bytesWritten = 0;
  /** Response bytes sent, and acknowledged by the main thread. */
  private sent = 0;
  private peerAcked = 0;
  private heldWrite: ((err?: Error | null) => void) | null = null;
  /** Request bytes received, and acknowledged to the main thread. */
  private received = 0;
  private acked = 0;
  private timeoutMs = 0;
  private timer: NodeJS.Timeout | null = null;
  /** The main thread's socket is gone: nothing to tell it on destroy. */
  private remoteClosed = false;

  constructor(
    readonly id: number,
    info: ConnInfo,
    private readonly post: Post,
    private readonly pool: BufferPool,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024 });
    this.remoteAddress = info.remoteAddress;
    this.remotePort = info.remotePort;
    this.remoteFamily = info.remoteFamily;
    this.localAddress = info.localAddress;
    this.localPort = info.localPort;
  }

  // ---- from the main thread ----

  onData(buf: Uint8Array): void {
    if (this.destroyed) return;
    const chunk = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.received += chunk.length;
    this.bytesRead += chunk.length;
    this.touch();
    this.push(chunk);
    this.maybeAck();
  }

  onAck(n: number): void {
    this.peerAcked += n;
    // Bytes reaching the client are activity, as a real socket's timeout counts them.
    this.touch();
    if (this.heldWrite && this.sent - this.peerAcked < WINDOW) {
      const cb = this.heldWrite;
      this.heldWrite = null;
      cb();
    }
  }

  onEnd(): void {
    if (!this.destroyed) this.push(null);
  }

  onRemoteClose(): void {
    this.remoteClosed = true;
    this.destroy();
  }

  // ---- Duplex ----

  override _read(): void {
    this.maybeAck();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.send([chunk], cb);
  }

  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.send(
      chunks.map((c) => c.chunk),
      cb,
    );
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.remoteClosed) this.post({ t: 'end', id: this.id });
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.heldWrite = null;
    if (!this.remoteClosed) this.post({ t: 'close', id: this.id });
    this.remoteClosed = true;
    cb(err);
  }

  // ---- the parts of net.Socket that node:http and apps use ----

  setTimeout(ms: number, cb?: () => void): this {
    this.timeoutMs = ms;
    if (cb) {
      if (ms === 0) this.off('timeout', cb);
      else this.once('timeout', cb);
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (ms > 0 && !this.destroyed) {
      this.timer = setTimeout(() => this.emit('timeout'), ms);
      this.timer.unref();
    }
    return this;
  }

  setNoDelay(_noDelay?: boolean): this {
    return this; // the main thread's socket has TCP_NODELAY
  }

  setKeepAlive(_enable?: boolean, _delay?: number): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  address(): { address?: string; port?: number; family?: string } {
    return { address: this.localAddress, port: this.localPort, family: this.remoteFamily };
  }

  /** node:http calls this after a `Connection: close` response: end, then close once flushed. */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  resetAndDestroy(): this {
    return this.destroy();
  }

  // ---- internals ----

  private send(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    let total = 0;
    for (const c of chunks) total += c.length;
    if (total === 0 || this.remoteClosed) return cb();
    // Always a copy: the app may reuse its buffer (a cached body), so it must not be transferred away.
    if (total < POOL_MIN) {
      const copy = new Uint8Array(total);
      let offset = 0;
      for (const c of chunks) {
        copy.set(c, offset);
        offset += c.length;
      }
      this.post({ t: 'data', id: this.id, buf: copy }, [copy.buffer]);
    } else {
      // Into pooled CHUNK buffers, one message each.
      let ab = this.pool.take();
      let filled = 0;
      for (const c of chunks) {
        let from = 0;
        while (from < c.length) {
          const n = Math.min(c.length - from, CHUNK - filled);
          new Uint8Array(ab, filled, n).set(c.subarray(from, from + n));
          filled += n;
          from += n;
          if (filled === CHUNK) {
            this.post({ t: 'data', id: this.id, buf: new Uint8Array(ab) }, [ab]);
            ab = this.pool.take();
            filled = 0;
          }
        }
      }
      if (filled > 0) this.post({ t: 'data', id: this.id, buf: new Uint8Array(ab, 0, filled) }, [ab]);
      else this.pool.give([ab]);
    }
    this.sent += total;
    this.bytesWritten += total;
    this.touch();
    if (this.sent - this.peerAcked < WINDOW) cb();
    else this.heldWrite = cb;
  }

  /** Acknowledge the request bytes the parser has taken, in batches. */
  private maybeAck(): void {
    const n = this.received - this.readableLength - this.acked;
    if (n >= ACK_BATCH && !this.remoteClosed) {
      this.acked += n;
      this.post({ t: 'ack', id: this.id, n });
    }
  }

  private touch(): void {
    if (this.timer && this.timeoutMs > 0) this.timer.refresh();
  }
}
