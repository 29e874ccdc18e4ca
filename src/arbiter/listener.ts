// The listening sockets, owned by the primary for its whole life (as Gunicorn's master): bound
// before any worker exists, with the configured backlog. Connections are accepted paused and
// handed to workers, so no byte is read in the primary.

import fs from 'node:fs';
import net from 'node:net';
import { parseBind, type BindAddress } from '../config/bind.js';
import { PromforkError } from '../errors.js';

export interface Listener {
  bind: string;
  server: net.Server;
  /** For "Listening at:" lines: http://HOST:PORT or unix:PATH, with the real port when 0 was asked. */
  url: string;
}

interface BindOptions {
  backlog: number;
  retries?: number;
  retryDelayMs?: number;
  onConnection: (socket: net.Socket) => void;
  onRetry?: (bind: string, err: NodeJS.ErrnoException) => void;
}

export async function bindAll(binds: string[], opts: BindOptions): Promise<Listener[]> {
  const listeners: Listener[] = [];
  try {
    for (const bind of binds) listeners.push(await bindOne(bind, opts));
  } catch (err) {
    await closeAll(listeners);
    throw err;
  }
  return listeners;
}

async function bindOne(bind: string, opts: BindOptions): Promise<Listener> {
  const addr = parseBind(bind);
  if (addr.kind === 'unix') removeStaleSocket(addr.path, bind);
  const retries = opts.retries ?? 5;
  for (let attempt = 1; ; attempt++) {
    const server = net.createServer({ pauseOnConnect: true, noDelay: true }, opts.onConnection);
    try {
      await listen(server, addr, opts.backlog);
      return { bind, server, url: describe(addr, server) };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'EADDRINUSE' || attempt >= retries) throw bindError(bind, e);
      opts.onRetry?.(bind, e);
      await new Promise((r) => setTimeout(r, opts.retryDelayMs ?? 1000));
    }
  }
}

function listen(server: net.Server, addr: BindAddress, backlog: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const options = addr.kind === 'unix' ? { path: addr.path, backlog } : { host: addr.host, port: addr.port, backlog };
    server.listen(options, () => {
      server.off('error', reject);
      resolve();
    });
  });
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

function describe(addr: BindAddress, server: net.Server): string {
  if (addr.kind === 'unix') return `unix:${addr.path}`;
  const real = server.address();
  const port = real && typeof real === 'object' ? real.port : addr.port;
  const host = addr.host.includes(':') ? `[${addr.host}]` : addr.host;
  return `http://${host}:${port}`;
}

export async function closeAll(listeners: Listener[]): Promise<void> {
  await Promise.all(
    listeners.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve()))),
  );
}
