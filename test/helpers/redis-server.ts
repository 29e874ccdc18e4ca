// A real redis-server on a free loopback port, no persistence, optionally with a password: for the tests
// (test/helpers/redis.ts adds their clean-up) and the Redis benchmark. It waits until the server answers PING
// (with a deadline, never a fixed sleep), and kills by pid every server still running when the process exits.
// No node:test hooks here, so a benchmark can import it.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { createClient } from 'redis';
import { freePort } from './ports.js';
import { findTool, missingToolMessage } from './tools.js';

export const REDIS_SERVER = process.env.PROMFORK_TEST_REDIS_SERVER ?? findTool('redis-server') ?? 'redis-server';

/** Calls and microseconds spent, by command (INFO commandstats). */
export type CommandStats = Map<string, { calls: number; usec: number }>;

export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:PORT` (no password in it). */
  readonly url: string;
  /** The server's current pid (a restart changes it). */
  readonly pid: number;
  readonly password: string | undefined;
  /** SIGTERM by pid, SIGKILL after a grace period; resolves once it exited. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL by pid, for outage tests; resolves once it exited. */
  kill(): Promise<void>;
  /** Start it again on the same port (stopping it first if it runs), for "Redis is back" tests. */
  restart(): Promise<void>;
  /** Run one command through a node-redis client (RESP2), e.g. cli('INFO', 'commandstats'); the reply as text. */
  cli(...args: (string | number)[]): Promise<string>;
  /** `calls` of each command from INFO commandstats, e.g. { set: 3, 'client|setname': 1 }. */
  commandCalls(): Promise<Record<string, number>>;
  /** INFO commandstats: calls and microseconds spent, by command. */
  commandStats(): Promise<CommandStats>;
  /** The server's output so far (for failure messages). */
  output(): string;
}

const running = new Set<RedisInstance>();
process.on('exit', () => {
  for (const r of running) r.killNow();
});

export interface RedisServerOptions {
  /** `requirepass` (and, for a replica, `masterauth`). */
  password?: string;
  binary?: string;
  /** More arguments for redis-server, given the port it listens on (cluster, replication, sentinel). */
  args?: (port: number) => Promise<string[]> | string[];
  /** A configuration file written before the start (a sentinel rewrites its own), given the port. */
  config?: (port: number) => { path: string; text: string };
  /** TLS only (no plain port): the server's certificate and key, and the CA that signed them (test/helpers/pki.ts). */
  tls?: RedisTls;
}

export interface RedisTls {
  cert: string;
  key: string;
  ca: string;
}

/** Start redis-server (`binary`, default REDIS_SERVER) on a free port: a few attempts, a port can be taken meanwhile. */
export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const binary = opts.binary ?? REDIS_SERVER;
  if (!existsSync(binary) && findTool(binary) === undefined) {
    throw new Error(binary === 'redis-server' ? missingToolMessage('redis-server') : `${binary} does not exist (PROMFORK_TEST_REDIS_SERVER)`);
  }
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const extra = opts.args ? await opts.args(port) : [];
    const config = opts.config?.(port) ?? null;
    const r = new RedisInstance(port, opts.password, binary, extra, config, opts.tls ?? null);
    try {
      await r.launch();
      return r;
    } catch (err) {
      lastError = err; // most likely the port was taken between probing it and binding it: try another
      await r.stop();
    }
  }
  throw new Error(`could not start ${binary}: ${(lastError as Error).message}`);
}

class RedisInstance implements RedisServer {
  readonly url: string;
  private proc: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private log = '';
  private admin: ReturnType<typeof createAdmin> | null = null;
  private readonly cwds: string[] = [];

  constructor(
    readonly port: number,
    readonly password: string | undefined,
    private readonly binary: string,
    private readonly extraArgs: string[] = [],
    private readonly config: { path: string; text: string } | null = null,
    readonly tls: RedisTls | null = null,
  ) {
    this.url = `${tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`;
  }

  get pid(): number {
    return this.proc?.pid ?? 0;
  }

  output(): string {
    return this.log;
  }

  async launch(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
    if (this.password !== undefined) args.push('--requirepass', this.password);
    if (this.tls !== null) {
      // TLS only: the port is the TLS port; replication and the cluster bus use TLS too.
      args.splice(0, 2, '--port', '0', '--tls-port', String(this.port));
      args.push('--tls-cert-file', this.tls.cert, '--tls-key-file', this.tls.key, '--tls-ca-cert-file', this.tls.ca);
      args.push('--tls-auth-clients', 'no', '--tls-replication', 'yes');
    }
    if (this.config !== null) {
      // The file first (redis-server reads it, then the arguments). Written once: a sentinel rewrites it with what
      // it learnt (the current master, the other sentinels), which a restart keeps.
      if (!existsSync(this.config.path)) writeFileSync(this.config.path, this.config.text, { mode: 0o600 });
      args.unshift(this.config.path);
    }
    args.push(...this.extraArgs);
    // A private working directory: a replica writes the RDB of its full sync there (never into the checkout).
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'promfork-redis-'));
    this.cwds.push(cwd);
    const proc = spawn(this.binary, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    running.add(this);
    const onData = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString()).slice(-20_000);
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    let exitedEarly = false;
    this.exited = new Promise((resolve) => {
      proc.once('exit', () => {
        exitedEarly = true;
        resolve();
      });
      proc.once('error', (err) => {
        this.log += `\n${err.message}`;
        exitedEarly = true;
        resolve();
      });
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (exitedEarly) throw new Error(`redis-server exited before accepting connections:\n${this.log}`);
      if (await ping(this.port, this.tls)) return;
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING on port ${this.port} within 10 s:\n${this.log}`);
      await Promise.race([delay(20), this.exited]);
    }
  }

  async stop(): Promise<void> {
    await this.closeAdmin();
    await this.signalAndWait('SIGTERM', 5000);
    running.delete(this);
    // Its working directories (one per launch) go with it.
    for (const dir of this.cwds.splice(0)) rmSync(dir, { recursive: true, force: true });
  }

  async kill(): Promise<void> {
    await this.closeAdmin();
    await this.signalAndWait('SIGKILL', 5000);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  killNow(): void {
    const proc = this.proc;
    if (proc?.pid !== undefined && proc.exitCode === null && proc.signalCode === null) {
      try {
        process.kill(proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  async cli(...args: (string | number)[]): Promise<string> {
    if (this.admin !== null && !this.admin.isReady) await this.closeAdmin(); // closed by the server (a sentinel's CLIENT KILL)
    if (this.admin === null) {
      const client = createAdmin(this.port, this.password, this.tls);
      client.on('error', () => undefined); // failures surface as rejected commands
      this.admin = client;
      await client.connect();
    }
    const reply = await this.admin.sendCommand(args.map(String));
    if (reply === null || reply === undefined) return '';
    if (typeof reply === 'string') return reply;
    if (typeof reply === 'number' || typeof reply === 'bigint') return String(reply);
    if (Buffer.isBuffer(reply)) return reply.toString();
    return JSON.stringify(reply);
  }

  async commandCalls(): Promise<Record<string, number>> {
    return Object.fromEntries([...(await this.commandStats())].map(([cmd, s]) => [cmd, s.calls]));
  }

  async commandStats(): Promise<CommandStats> {
    const text = await this.cli('INFO', 'commandstats');
    const stats: CommandStats = new Map();
    for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) stats.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
    return stats;
  }

  private async closeAdmin(): Promise<void> {
    const admin = this.admin;
    this.admin = null;
    if (admin === null) return;
    if (admin.isReady) await admin.close().catch(() => admin.destroy());
    else if (admin.isOpen) admin.destroy();
  }

  private async signalAndWait(sig: NodeJS.Signals, graceMs: number): Promise<void> {
    const proc = this.proc;
    if (proc === null || proc.pid === undefined) return;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    try {
      process.kill(proc.pid, sig);
    } catch {
      // already gone
    }
    const timer = setTimeout(() => this.killNow(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

function createAdmin(port: number, password: string | undefined, tls: RedisTls | null) {
  const secure = tls ? { tls: true as const, ca: readFileSync(tls.ca) } : {};
  return createClient({
    RESP: 2,
    socket: { host: '127.0.0.1', port, connectTimeout: 2000, reconnectStrategy: false, ...secure },
    disableClientInfo: true,
    maintNotifications: 'disabled',
    ...(password !== undefined ? { password } : {}),
  });
}

/** True when a server on `port` answers PING (+PONG, or -NOAUTH when it requires a password: it accepts). */
function ping(port: number, tlsFiles: RedisTls | null = null): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tlsFiles ? tls.connect({ host: '127.0.0.1', port, ca: readFileSync(tlsFiles.ca) }) : net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    sock.once('error', () => done(false));
    sock.once(tlsFiles ? 'secureConnect' : 'connect', () => sock.write('*1\r\n$4\r\nPING\r\n'));
    sock.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG') || buf.startsWith('-NOAUTH'));
    });
    sock.once('close', () => done(false));
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
