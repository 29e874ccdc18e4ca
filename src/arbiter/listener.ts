// The listening sockets, owned by the primary for its whole life (as Gunicorn's master): bound and
// listening with the configured backlog before any worker exists. The primary never polls them: the
// workers accept from them (each gets a duplicate of every listening descriptor over IPC, once), so
// the rate of new connections grows with the workers and the kernel's accept queue is the only queue.
// Connections that arrive while no worker is accepting wait in that queue (up to --backlog); they
// outlive any worker, since the primary holds the sockets open.
//
// Node has no public call that binds and listens without polling, so: the socket is created and bound
// with net._createServerHandle (the call node:cluster uses in its primary for the same purpose), and a
// short-lived helper process that inherits the descriptors calls listen(2) on them and exits before its
// event loop ever polls. The LISTEN state belongs to the socket, not to the process, so it stays.

import { spawnSync } from 'node:child_process';
import dns from 'node:dns/promises';
import fs from 'node:fs';
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { parseBind, type BindAddress } from '../config/bind.js';
import { PromforkError } from '../errors.js';

/** A bound server handle (node's internal TCP or Pipe wrap). */
export interface ServerHandle {
  readonly fd: number;
  close(cb?: () => void): void;
  getsockname?(out: { port?: number }): number;
}

export interface Listener {
  bind: string;
  handle: ServerHandle;
  /** For "Listening at:" lines: http://HOST:PORT or unix:PATH, with the real port when 0 was asked. */
  url: string;
  /** Set once the primary itself accepts from it (a stale listener being drained after a rebind). */
  drain?: net.Server;
}

interface BindOptions {
  backlog: number;
  retries?: number;
  retryDelayMs?: number;
  onRetry?: (bind: string, err: NodeJS.ErrnoException) => void;
}

export async function bindAll(binds: string[], opts: BindOptions): Promise<Listener[]> {
  const listeners: Listener[] = [];
  try {
    for (const bind of binds) listeners.push(await bindOne(bind, opts));
  } catch (err) {
    closeAll(listeners);
    throw err;
  }
  return listeners;
}

async function bindOne(bind: string, opts: BindOptions): Promise<Listener> {
  const addr = parseBind(bind);
  if (addr.kind === 'unix') removeStaleSocket(addr.path, bind);
  const host = addr.kind === 'tcp' ? await resolveHost(addr.host, bind) : null;
  const retries = opts.retries ?? 5;
  for (let attempt = 1; ; attempt++) {
    const handle = createBound(addr, host);
    // Binding reports EADDRINUSE only at listen(2) for TCP (libuv delays it), so both steps are one try.
    const code =
      typeof handle === 'number'
        ? errnoName(handle)
        : (bindFailed(addr, handle) ?? listenHandles([handle], opts.backlog));
    if (code === null) return { bind, handle: handle as ServerHandle, url: describe(addr, handle as ServerHandle) };
    if (typeof handle !== 'number') handle.close();
    const e = Object.assign(new Error(code), { code }) as NodeJS.ErrnoException;
    if (code !== 'EADDRINUSE' || attempt >= retries) throw bindError(bind, e);
    opts.onRetry?.(bind, e);
    await new Promise((r) => setTimeout(r, opts.retryDelayMs ?? 1000));
  }
}

/**
 * libuv defers a TCP bind's EADDRINUSE to listen(2) and keeps it in the primary's handle; the helper that calls
 * listen(2) on the descriptor never sees it, and the kernel would give the still unbound socket an ephemeral port.
 * A bound socket has its port from bind(2) on (port 0 asks for one then), so an unbound one is a failed bind.
 */
function bindFailed(addr: BindAddress, handle: ServerHandle): string | null {
  if (addr.kind !== 'tcp') return null;
  const out: { port?: number } = {};
  handle.getsockname?.(out);
  return out.port ? null : 'EADDRINUSE';
}

type CreateServerHandle = (address: string | null, port: number, addressType: number) => ServerHandle | number;

function createBound(addr: BindAddress, host: { address: string; family: number } | null): ServerHandle | number {
  const create = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle;
  if (addr.kind === 'unix') return create(addr.path, -1, -1);
  return create(host!.address, addr.port, host!.family);
}

async function resolveHost(host: string, bind: string): Promise<{ address: string; family: number }> {
  const family = net.isIP(host);
  if (family !== 0) return { address: host, family };
  try {
    return await dns.lookup(host);
  } catch (err) {
    throw bindError(bind, err as NodeJS.ErrnoException);
  }
}

const LISTEN_HELPER = `
const net = require('node:net');
const [n, backlog] = process.argv.slice(1).map(Number);
let done = 0;
for (let i = 0; i < n; i++) {
  const s = new net.Server();
  s.on('error', (e) => { process.stdout.write(String(e.code)); process.exit(1); });
  s.on('listening', () => { if (++done === n) process.exit(0); });
  s.listen({ fd: 3 + i, backlog });
}`;

/**
 * Put bound handles in the LISTEN state without polling them here: a helper process inherits them and
 * calls listen(2) in its first tick (errors and 'listening' are reported on nextTick, before its event
 * loop could accept anything), then exits. Returns null, or the errno name of the failure.
 */
export function listenHandles(handles: ServerHandle[], backlog: number): string | null {
  const r = spawnSync(process.execPath, ['-e', LISTEN_HELPER, String(handles.length), String(backlog)], {
    stdio: ['ignore', 'pipe', 'pipe', ...handles.map((h) => h.fd)],
    env: {},
    timeout: 30_000,
  });
  if (r.status === 0) return null;
  const out = r.stdout?.toString().trim();
  return out || (r.error ? `listen helper: ${r.error.message}` : `listen helper exited with ${r.status ?? r.signal}`);
}

function errnoName(code: number): string {
  try {
    return getSystemErrorName(code);
  } catch {
    return String(code);
  }
}

function removeStaleSocket(file: string, bind: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(file);
  } catch {
    return;
  }
  if (!stat.isSocket()) {
    throw new PromforkError(
      'PROMFORK_ERR_BIND',
      `--bind ${bind}: ${file} exists and is not a socket. Remove it or choose another path`,
    );
  }
  fs.unlinkSync(file);
}

function bindError(bind: string, err: NodeJS.ErrnoException): PromforkError {
  const why: Record<string, string> = {
    EADDRINUSE: 'the address is already in use (another server is listening there); stop it or choose another --bind',
    EACCES: 'permission denied; ports below 1024 need privileges, choose a higher port',
    EADDRNOTAVAIL: 'this machine has no such address; use 127.0.0.1 or 0.0.0.0',
    ENOTFOUND: 'the host name does not resolve; use an IP address',
  };
  return new PromforkError(
    'PROMFORK_ERR_BIND',
    `cannot listen on ${bind}: ${why[err.code ?? ''] ?? `${err.code ?? err.message}`}`,
  );
}

function describe(addr: BindAddress, handle: ServerHandle): string {
  if (addr.kind === 'unix') return `unix:${addr.path}`;
  const out: { port?: number } = {};
  handle.getsockname?.(out);
  const host = addr.host.includes(':') ? `[${addr.host}]` : addr.host;
  return `http://${host}:${out.port ?? addr.port}`;
}

/** Close the primary's sockets (a unix socket's file is removed with it). Queued connections are reset. */
export function closeAll(listeners: Listener[]): void {
  for (const l of listeners) {
    if (l.drain) l.drain.close();
    else l.handle.close();
  }
}

/**
 * A listener that no worker accepts from any more (its bind was removed by a reload): the primary takes
 * its queued and new connections itself and passes each to `onConnection` (a worker, over IPC).
 */
export function startDraining(l: Listener, backlog: number, onConnection: (socket: net.Socket) => void): void {
  if (l.drain) return;
  l.drain = new net.Server({ pauseOnConnect: true, noDelay: true }, onConnection);
  l.drain.on('error', () => {});
  l.drain.listen(l.handle as never, backlog);
}

/** Close a draining listener after a poll of the event loop that accepted nothing more. */
export function closeDrained(l: Listener): Promise<void> {
  return new Promise((resolve) => {
    const server = l.drain;
    if (!server) {
      l.handle.close();
      resolve();
      return;
    }
    let accepted = 0;
    const count = () => accepted++;
    server.on('connection', count);
    const check = (seen: number) =>
      setImmediate(() => {
        if (accepted !== seen) return check(accepted);
        server.off('connection', count);
        server.close();
        resolve();
      });
    check(-1);
  });
}
