// The Redis store (REDIS_ENABLED=true): no files. Each worker's snapshot is one STRING value, so a worker's series
// can never partly expire (the seed's per-series keys and per-key TTL did: pitfall 10). Keys are namespaced by the
// prefix, the instance (host) and the run (the primary's pid), so servers sharing a Redis never see each other's
// data (pitfall 11):
//
//   <prefix>:<instance>:<ppid>:w:<pid>     the last snapshot of worker <pid> (JSON, codec.ts), with a TTL
//   <prefix>:<instance>:<ppid>:retired     the run's fold of dead workers (codec.ts's envelope), with a TTL
//   <prefix>:<instance>:<ppid>:workers     a SET of the pids that have a snapshot key (the index), with a TTL
//
// Round trips (pitfall 9: the seed issued ~58 commands per request, sequentially):
//   writeSnapshot   1 round trip: MULTI, SET key json PX ttl, SADD index pid, PEXPIRE index ttl, EXEC
//   readAll         2 round trips whatever the number of workers: SMEMBERS index, then one MGET
//   readSnapshot    1 (GET); removeSnapshot 1 (MULTI DEL + SREM EXEC); refresh 1 (a pipeline of PEXPIREs)
//
// The TTL is a liveness heartbeat: a worker's own writes extend its key and the index, and the primary's
// `refresh(livePids)` extends every live worker's key, the retired fold and the index, so nothing expires while its
// server lives even when a worker is blocked for longer than the TTL; everything of a run that died unseen
// disappears by itself.
//
// Connection: node-redis, connected lazily on the first operation, reconnecting forever with capped exponential
// backoff. The offline queue is disabled and every operation has a deadline, so while Redis is down operations
// reject at once (memory stays bounded, a request is never slowed: law L4) with an error naming host:port; a
// refused password names the setting to fix. The password never appears in an error or a log line.

import { ErrorReply, MultiErrorReply, createClient } from 'redis';
import { PromforkError } from '../errors.js';
import { encodeRetired, encodeSnapshot, parseRetired, parseSnapshot } from './codec.js';
import type { Snapshot } from './snapshot.js';
import type { SnapshotStore } from './store.js';

export interface RedisStoreLog {
  warning(msg: string): void;
  info?(msg: string): void;
}

/** Where Redis is: `url` wins when set (`redis://`, `rediss://` for TLS), else host, port, db and password. */
export interface RedisTarget {
  url?: string | null;
  host: string;
  port: number;
  db: number;
  password?: string | null;
}

export interface RedisStoreOptions extends RedisTarget {
  /** REDIS_KEY_PREFIX. */
  prefix: string;
  /** This server's name in the keys (default elsewhere: the host name); no `:` and no white space. */
  instance: string;
  /** The primary's pid: the run this store serves. */
  ppid: number;
  /** TTL of every key, refreshed by writes and by `refresh()` (default 60). */
  ttlSeconds?: number;
  /** Deadline of each operation, connecting included (default 2000 ms). */
  timeoutMs?: number;
  log: RedisStoreLog;
}

/** One run found in Redis by `listInstances`. */
export interface RedisRun {
  instance: string;
  ppid: number;
}

/** Everything of one run, read in two round trips. */
export interface RedisRunData {
  snapshots: Snapshot[];
  problems: string[];
  retired: unknown | null;
}

const DEFAULT_TTL_SECONDS = 60;
const DEFAULT_TIMEOUT_MS = 2000;
const MAX_BACKOFF_MS = 5000;
/** Bounds the client's command queue when Redis stops answering without closing the connection. */
const MAX_QUEUED_COMMANDS = 1000;
const SCAN_COUNT = 1000;

type Client = ReturnType<typeof makeClient>;

/** The part of a node-redis client (any RESP version, any modules) the static helpers use. */
export interface RedisCommands {
  sendCommand(args: string[]): Promise<unknown>;
}

export class RedisStore implements SnapshotStore {
  readonly kind = 'redis' as const;
  readonly prefix: string;
  readonly instance: string;
  readonly ppid: number;
  readonly ttlMs: number;
  readonly timeoutMs: number;
  /** The node-redis client (for the seed API's `getClient()`); connected lazily by the store's first operation. */
  readonly client: Client;
  /** `host:port` for messages. */
  readonly address: string;
  /** The target as shown in logs, password masked. */
  readonly target: string;

  private readonly log: RedisStoreLog;
  private readonly base: string;
  private readonly secrets: string[];
  /** Which setting holds the password ('REDIS_URL' when the URL carries one). */
  private readonly passwordSetting: string;
  private readonly addressSetting: string;
  private readonly hasPassword: boolean;
  /** The error that started the current outage; null while connected (or before the first connect). */
  private outage: Error | null = null;
  private readonly waiters = new Set<() => void>();
  private readonly pending = new Set<Promise<unknown>>();
  private closed = false;
  private closing: Promise<void> | null = null;

  constructor(opts: RedisStoreOptions) {
    if (!isPid(opts.ppid)) throw new TypeError(`RedisStore: ppid must be a positive integer, got ${opts.ppid}`);
    if (typeof opts.prefix !== 'string' || opts.prefix === '') {
      throw new PromforkError('PROMFORK_ERR_REDIS_CONFIG', 'REDIS_KEY_PREFIX must not be empty');
    }
    if (!/^[^\s:]+$/.test(opts.instance)) {
      throw new PromforkError(
        'PROMFORK_ERR_REDIS_CONFIG',
        `invalid instance name ${JSON.stringify(opts.instance)} (--metrics-instance, PROMFORK_INSTANCE): Redis keys need a non-empty name without ':' or white space`,
      );
    }
    const ttl = opts.ttlSeconds ?? DEFAULT_TTL_SECONDS;
    if (!(Number.isFinite(ttl) && ttl > 0)) throw new TypeError(`RedisStore: ttlSeconds must be a positive number, got ${ttl}`);
    this.prefix = opts.prefix;
    this.instance = opts.instance;
    this.ppid = opts.ppid;
    this.ttlMs = Math.max(1, Math.round(ttl * 1000));
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.log = opts.log;
    this.base = runBase(opts.prefix, opts.instance, opts.ppid);

    const t = resolveTarget(opts);
    this.address = t.address;
    this.target = describeRedisTarget(opts);
    this.secrets = t.secrets;
    this.hasPassword = t.password !== null;
    this.passwordSetting = t.urlHasPassword ? 'REDIS_URL' : 'REDIS_PASSWORD';
    this.addressSetting = t.url !== null ? 'REDIS_URL' : 'REDIS_HOST and REDIS_PORT';
    this.client = makeClient(t, {
      connectTimeout: this.timeoutMs,
      name: `promfork-${opts.ppid}-${process.pid}`,
    });
    // Always listened to: an 'error' event without a listener would crash the process.
    this.client.on('error', (err: unknown) => this.onError(err));
    this.client.on('ready', () => this.onReady());
  }

  // ---- keys ----

  /** Key of worker `pid`'s snapshot. */
  keyFor(pid: number): string {
    return `${this.base}w:${pid}`;
  }

  /** Key of the run's retired fold. */
  get retiredKey(): string {
    return `${this.base}retired`;
  }

  /** Key of the run's index: the set of worker pids with a snapshot. */
  get indexKey(): string {
    return `${this.base}workers`;
  }

  // ---- SnapshotStore ----

  async writeSnapshot(s: Snapshot): Promise<void> {
    if (!isPid(s.pid)) throw new Error(`cannot write a snapshot: pid must be a positive integer, got ${s.pid}`);
    if (s.ppid !== this.ppid) {
      throw new Error(`cannot write the snapshot of pid ${s.pid}: it belongs to primary ${s.ppid}, this store to ${this.ppid}`);
    }
    // Serialised now: Redis gets the snapshot as it was at the call, whatever the caller does next.
    const json = JSON.stringify(encodeSnapshot(s));
    const key = this.keyFor(s.pid);
    await this.run(`write the snapshot of worker ${s.pid}`, (c) =>
      c
        .multi()
        .set(key, json, { expiration: { type: 'PX', value: this.ttlMs } })
        .sAdd(this.indexKey, String(s.pid))
        .pExpire(this.indexKey, this.ttlMs)
        // A pipeline, not MULTI/EXEC: one round trip and 3 commands; the order within it is kept.
        .execAsPipeline(),
    );
  }

  async readSnapshot(pid: number): Promise<Snapshot | null> {
    if (!isPid(pid)) return null;
    const key = this.keyFor(pid);
    const text = await this.run(`read the snapshot of worker ${pid}`, (c) => c.get(key));
    if (text === null) return null;
    const result = parseSnapshot(text, pid, this.ppid);
    if (typeof result === 'string') throw new Error(`Redis key ${key}: ${result}`);
    return result;
  }

  async readAll(): Promise<{ snapshots: Snapshot[]; problems: string[] }> {
    const { snapshots, problems } = await this.run('read the snapshots', (c) =>
      readRunWith(c as unknown as RedisCommands, this.base, this.ppid, false),
    );
    return { snapshots, problems };
  }

  async removeSnapshot(pid: number): Promise<void> {
    if (!isPid(pid)) return;
    const key = this.keyFor(pid);
    await this.run(`remove the snapshot of worker ${pid}`, (c) => c.multi().del(key).sRem(this.indexKey, String(pid)).exec());
  }

  async writeRetired(data: unknown): Promise<void> {
    const text = encodeRetired(data, this.ppid);
    await this.run('write the retired fold', (c) => c.set(this.retiredKey, text, { expiration: { type: 'PX', value: this.ttlMs } }));
  }

  async readRetired(): Promise<unknown | null> {
    const key = this.retiredKey;
    const text = await this.run('read the retired fold', (c) => c.get(key));
    if (text === null) return null;
    const result = parseRetired(text, this.ppid);
    if (typeof result === 'string') throw new Error(`Redis key ${key}: ${result}`);
    return result.data;
  }

  /**
   * The primary's heartbeat: one pipeline of PEXPIRE for each live worker's key, the retired fold and the index, so
   * nothing of a live server expires, even a worker blocked for longer than the TTL.
   */
  async refresh(pids: number[]): Promise<void> {
    const keys = [...new Set(pids.filter(isPid))].map((pid) => this.keyFor(pid));
    keys.push(this.retiredKey, this.indexKey);
    await this.run('refresh the TTLs', (c) => {
      const batch = c.multi();
      for (const key of keys) batch.pExpire(key, this.ttlMs);
      return batch.execAsPipeline();
    });
  }

  /** Remove every key of this run (found by SCAN, so stray ones too); never another run's. */
  async clear(): Promise<void> {
    await this.run('clear the run', async (c) => {
      const raw = c as unknown as RedisCommands;
      const keys = (await scanKeys(raw, `${globEscape(this.base)}*`)).filter((k) => isRunKey(k, this.base));
      for (let i = 0; i < keys.length; i += SCAN_COUNT) await raw.sendCommand(['DEL', ...keys.slice(i, i + SCAN_COUNT)]);
    });
  }

  /** Wait for pending operations, then disconnect. Later operations reject. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.closing = (async () => {
      await Promise.allSettled([...this.pending]);
      this.wake();
      if (this.client.isReady) {
        await withDeadline(this.client.close(), Date.now() + this.timeoutMs, () => new Error('close timed out')).catch(() =>
          this.client.destroy(),
        );
      } else if (this.client.isOpen) {
        this.client.destroy();
      }
    })();
    return this.closing;
  }

  // ---- for the sidecar exporter and the seed API ----

  /** Every run (`instance:ppid`) under `prefix` that has an index or a retired fold (found by SCAN), sorted. */
  static async listInstances(client: RedisCommands, prefix: string): Promise<string[]> {
    return (await listRuns(client, prefix)).map((r) => `${r.instance}:${r.ppid}`);
  }

  /**
   * Every run under `opts.prefix`, through a short-lived connection (the sidecar's discovery); `opts.ppid` and
   * `opts.instance` are not used. Rejects like any operation when Redis is unreachable.
   */
  static async listRuns(opts: Omit<RedisStoreOptions, 'ppid' | 'instance'> & { ppid?: number; instance?: string }): Promise<RedisRun[]> {
    const store = new RedisStore({ ...opts, instance: 'list', ppid: process.pid });
    try {
      return await store.run('list the runs', (c) => listRuns(c as unknown as RedisCommands, store.prefix));
    } finally {
      await store.close();
    }
  }

  /** Snapshots, problems and retired fold of any run under `prefix`, in two round trips. */
  static readRun(client: RedisCommands, prefix: string, instance: string, ppid: number): Promise<RedisRunData> {
    return readRunWith(client, runBase(prefix, instance, ppid), ppid, true);
  }

  /** `RedisStore.listInstances` through this store's connection (deadline and error messages included). */
  listInstances(): Promise<string[]> {
    return this.run('list the runs', (c) => RedisStore.listInstances(c as unknown as RedisCommands, this.prefix));
  }

  /** `RedisStore.readRun` through this store's connection, for any run under this store's prefix. */
  readRun(instance: string, ppid: number): Promise<RedisRunData> {
    return this.run(`read the run ${instance}:${ppid}`, (c) =>
      RedisStore.readRun(c as unknown as RedisCommands, this.prefix, instance, ppid),
    );
  }

  // ---- connection ----

  /**
   * Run `op` once connected, within the deadline. While an outage is known, reject at once (the offline queue is
   * disabled: nothing piles up); on the first connect (or a reconnect not yet failed), wait for it until the deadline.
   */
  private run<T>(what: string, op: (c: Client) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`cannot ${what}: the Redis store is closed`));
    const deadline = Date.now() + this.timeoutMs;
    const start = (): Promise<T> => {
      try {
        return op(this.client);
      } catch (err) {
        return Promise.reject(err);
      }
    };
    const sent = this.client.isReady ? start() : this.connected(deadline).then(start);
    const done = withDeadline(sent, deadline, () => this.unreachable(null, `no answer within ${this.timeoutMs} ms`)).then(
      (value) => {
        if (this.outage !== null && this.client.isReady) this.onReady();
        return value;
      },
      (err: unknown) => {
        throw this.translate(err, what);
      },
    );
    const tracked = done.catch(() => undefined);
    this.pending.add(tracked);
    void tracked.then(() => this.pending.delete(tracked));
    return done;
  }

  /** Resolves when the client is ready; rejects at once during an outage, else at the deadline. */
  private connected(deadline: number): Promise<void> {
    if (!this.client.isOpen) {
      // Lazy first connect. connect() settles only once ready (it retries by itself); failures arrive as 'error'.
      this.client.connect().catch(() => undefined);
    }
    if (this.outage !== null) return Promise.reject(this.unreachable(this.outage));
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.client.isReady) finish();
        else if (this.outage !== null || this.closed) finish();
      };
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (this.client.isReady) resolve();
        else if (this.closed) reject(new Error('the Redis store is closed'));
        else reject(this.unreachable(this.outage, this.outage ? undefined : `not connected within ${this.timeoutMs} ms`));
      };
      const timer = setTimeout(finish, Math.max(0, deadline - Date.now()));
      this.waiters.add(check);
    });
  }

  private onError(err: unknown): void {
    const first = this.outage === null;
    this.outage = err instanceof Error ? err : new Error(String(err));
    if (first) {
      const what = isAuthError(this.outage) ? this.authError(this.outage).message : this.unreachable(this.outage).message;
      this.log.warning(`metrics: ${what}; snapshots are not stored until it is back (reconnecting in the background)`);
    }
    this.wake();
  }

  private onReady(): void {
    if (this.outage !== null) {
      this.outage = null;
      this.log.info?.(`metrics: Redis at ${this.address} is reachable again`);
    }
    this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  // ---- errors (never with the password) ----

  private translate(err: unknown, what: string): Error {
    if (err instanceof PromforkError) return err;
    if (!(err instanceof Error)) return new Error(this.redact(`Redis at ${this.address}: cannot ${what}: ${String(err)}`));
    const reply = firstReplyError(err);
    if (reply !== null) {
      if (isAuthError(reply)) return this.authError(reply);
      return new Error(this.redact(`Redis at ${this.address}: cannot ${what}: ${reply.message}`), { cause: err });
    }
    if (isAuthError(this.outage)) return this.authError(this.outage!);
    return this.unreachable(this.outage ?? err);
  }

  private unreachable(cause: Error | null, detail?: string): PromforkError {
    if (cause !== null && isAuthError(cause)) return this.authError(cause);
    const why = detail ?? (cause ? causeText(cause) : 'not connected');
    return new PromforkError(
      'PROMFORK_ERR_REDIS_UNREACHABLE',
      this.redact(`Redis at ${this.address} is unreachable (${why}); check ${this.addressSetting} and that Redis is running`),
    );
  }

  private authError(cause: Error): PromforkError {
    const reply = causeText(cause);
    const where = `Redis at ${this.address}`;
    let msg: string;
    if (/^NOAUTH\b/.test(reply) && !this.hasPassword) {
      msg = `${where} requires a password (${reply}); set REDIS_PASSWORD` + (this.addressSetting === 'REDIS_URL' ? ' or put it in REDIS_URL' : '');
    } else if (/without any password configured|no password is set/i.test(reply)) {
      msg = `${where} has no password configured, but ${this.passwordSetting} sets one (${reply}); remove it from ${this.passwordSetting}`;
    } else {
      msg = `${where} refused the password (${reply}); check ${this.passwordSetting}` + (this.passwordSetting === 'REDIS_URL' ? ` (${this.target})` : '');
    }
    return new PromforkError('PROMFORK_ERR_REDIS_AUTH', this.redact(msg));
  }

  private redact(text: string): string {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join('****');
    return out;
  }
}

// ---- the target ----

interface ResolvedTarget {
  url: string | null;
  host: string;
  port: number;
  db: number;
  password: string | null;
  urlHasPassword: boolean;
  address: string;
  secrets: string[];
}

export function resolveTarget(opts: RedisTarget): ResolvedTarget {
  const password = opts.password ? opts.password : null;
  const secrets = new Set<string>();
  if (password) {
    secrets.add(password);
    secrets.add(encodeURIComponent(password));
  }
  if (opts.url) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new PromforkError('PROMFORK_ERR_REDIS_CONFIG', `REDIS_URL ${maskUrlText(opts.url)} is not a valid URL (expected redis://[[user]:password@]host[:port][/db])`);
    }
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
      throw new PromforkError('PROMFORK_ERR_REDIS_CONFIG', `REDIS_URL ${maskUrl(u)}: the scheme must be redis:// or rediss:// (TLS), not ${u.protocol}//`);
    }
    if (u.hostname === '') throw new PromforkError('PROMFORK_ERR_REDIS_CONFIG', `REDIS_URL ${maskUrl(u)} has no host`);
    if (u.pathname.length > 1 && !/^\/\d+$/.test(u.pathname)) {
      throw new PromforkError('PROMFORK_ERR_REDIS_CONFIG', `REDIS_URL ${maskUrl(u)}: the path must be a database number (/0, /1, ...)`);
    }
    if (u.password) {
      secrets.add(u.password);
      try {
        secrets.add(decodeURIComponent(u.password));
      } catch {
        // a malformed escape: the raw form is masked already
      }
    }
    const port = u.port ? Number(u.port) : 6379;
    return {
      url: opts.url,
      host: u.hostname,
      port,
      db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
      // REDIS_PASSWORD applies when the URL carries no password.
      password: u.password ? null : password,
      urlHasPassword: u.password !== '',
      address: `${u.hostname}:${port}`,
      secrets: [...secrets].filter((s) => s !== ''),
    };
  }
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) {
    throw new PromforkError('PROMFORK_ERR_REDIS_CONFIG', `REDIS_PORT must be a port number (1-65535), got ${opts.port}`);
  }
  if (!Number.isInteger(opts.db) || opts.db < 0) {
    throw new PromforkError('PROMFORK_ERR_REDIS_CONFIG', `REDIS_DB must be a database number (0, 1, ...), got ${opts.db}`);
  }
  const host = opts.host || 'localhost';
  return {
    url: null,
    host,
    port: opts.port,
    db: opts.db,
    password,
    urlHasPassword: false,
    address: `${host.includes(':') ? `[${host}]` : host}:${opts.port}`,
    secrets: [...secrets].filter((s) => s !== ''),
  };
}

/** The Redis target for logs, password masked: `redis://:****@host:port/db` (the URL as given, masked, when set). */
export function describeRedisTarget(opts: RedisTarget): string {
  if (opts.url) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      return maskUrlText(opts.url);
    }
    return maskUrl(u);
  }
  const host = opts.host || 'localhost';
  const auth = opts.password ? ':****@' : '';
  return `redis://${auth}${host.includes(':') ? `[${host}]` : host}:${opts.port}${opts.db ? `/${opts.db}` : ''}`;
}

function maskUrl(u: URL): string {
  const auth = u.username || u.password ? `${u.username}${u.password ? ':****' : ''}@` : '';
  const path = u.pathname.length > 1 ? u.pathname : '';
  return `${u.protocol}//${auth}${u.host}${path}`;
}

/**
 * A URL that does not parse, for a message: its scheme only. Where its user-info ends cannot be known (a password
 * may hold '@', '/' or ':'), so nothing after the scheme is shown.
 */
function maskUrlText(text: string): string {
  const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.exec(text);
  return scheme ? `${scheme[0]}... (not shown)` : '(not shown)';
}

function makeClient(t: ResolvedTarget, extra: { connectTimeout: number; name: string }) {
  const socket = {
    connectTimeout: extra.connectTimeout,
    // Forever, with capped exponential backoff: 100, 200, 400 ... 5000 ms.
    reconnectStrategy: (retries: number) => Math.min(2 ** Math.min(retries, 16) * 100, MAX_BACKOFF_MS),
  };
  const common = {
    RESP: 2 as const, // every Redis version (HELLO/RESP3 needs Redis 6)
    disableOfflineQueue: true,
    disableClientInfo: true,
    maintNotifications: 'disabled' as const,
    commandsQueueMaxLength: MAX_QUEUED_COMMANDS,
    name: extra.name,
  };
  if (t.url !== null) {
    return createClient({ ...common, url: t.url, socket, ...(t.password !== null ? { password: t.password } : {}) });
  }
  return createClient({
    ...common,
    socket: { ...socket, host: t.host, port: t.port },
    database: t.db,
    ...(t.password !== null ? { password: t.password } : {}),
  });
}

// ---- reading a run ----

function runBase(prefix: string, instance: string, ppid: number): string {
  return `${prefix}:${instance}:${ppid}:`;
}

const WORKER_KEY = /^w:([1-9]\d*)$/;

function isRunKey(key: string, base: string): boolean {
  if (!key.startsWith(base)) return false;
  const rest = key.slice(base.length);
  return rest === 'retired' || rest === 'workers' || WORKER_KEY.test(rest);
}

/** SMEMBERS, then one MGET of every member's key (and of the retired fold when asked): two round trips. */
async function readRunWith(client: RedisCommands, base: string, ppid: number, withRetired: boolean): Promise<RedisRunData> {
  const members = asStrings(await client.sendCommand(['SMEMBERS', `${base}workers`]));
  const problems: string[] = [];
  const pids: number[] = [];
  for (const m of members) {
    if (/^[1-9]\d*$/.test(m) && isPid(Number(m))) pids.push(Number(m));
    else problems.push(`Redis key ${base}workers: ignoring the member ${JSON.stringify(m)}, which is not a pid`);
  }
  pids.sort((a, b) => a - b);
  const keys = pids.map((pid) => `${base}w:${pid}`);
  if (withRetired) keys.push(`${base}retired`);
  const values = keys.length === 0 ? [] : (await client.sendCommand(['MGET', ...keys])) as (string | null)[];
  const snapshots: Snapshot[] = [];
  pids.forEach((pid, i) => {
    const text = values[i];
    if (text === null || text === undefined) return; // expired or removed since SMEMBERS: that worker is gone
    const result = parseSnapshot(String(text), pid, ppid);
    if (typeof result === 'string') problems.push(`Redis key ${keys[i]}: ${result}`);
    else snapshots.push(result);
  });
  snapshots.sort((a, b) => a.seat - b.seat || a.pid - b.pid);
  let retired: unknown | null = null;
  if (withRetired) {
    const text = values[pids.length];
    if (text !== null && text !== undefined) {
      const result = parseRetired(String(text), ppid);
      if (typeof result === 'string') problems.push(`Redis key ${base}retired: ${result}`);
      else retired = result.data;
    }
  }
  return { snapshots, problems, retired };
}

async function listRuns(client: RedisCommands, prefix: string): Promise<RedisRun[]> {
  const head = `${prefix}:`;
  const runs = new Map<string, RedisRun>();
  // A run with a retired fold but no live snapshot (every worker folded, successors not yet written) is a run too.
  for (const key of await scanKeys(client, `${globEscape(head)}*`)) {
    const m = /^([^\s:]+):([1-9]\d*):(?:workers|retired)$/.exec(key.slice(head.length));
    if (!key.startsWith(head) || m === null) continue; // another prefix that starts with this one
    runs.set(`${m[1]}:${m[2]}`, { instance: m[1]!, ppid: Number(m[2]) });
  }
  return [...runs.values()].sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : a.ppid - b.ppid));
}

/** Every key matching `pattern` (SCAN: never blocks Redis as KEYS would); deduplicated. */
async function scanKeys(client: RedisCommands, pattern: string): Promise<string[]> {
  const keys = new Set<string>();
  let cursor = '0';
  do {
    const reply = (await client.sendCommand(['SCAN', cursor, 'MATCH', pattern, 'COUNT', String(SCAN_COUNT)])) as [unknown, unknown];
    cursor = String(reply[0]);
    for (const k of asStrings(reply[1])) keys.add(k);
  } while (cursor !== '0');
  return [...keys];
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

/** An array reply as strings (a RESP3 client may map sets to a Set). */
function asStrings(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  return v instanceof Set ? [...v].map(String) : [];
}

// ---- helpers ----

function firstReplyError(err: Error): ErrorReply | null {
  if (err instanceof MultiErrorReply) {
    for (const e of err.errors()) return e;
    return err;
  }
  return err instanceof ErrorReply ? err : null;
}

function isAuthError(err: Error | null): boolean {
  if (err === null) return false;
  return /^(WRONGPASS|NOAUTH)\b|invalid password|without any password configured|no password is set/i.test(causeText(err));
}

/** A one-line reason; an AggregateError (a host with several addresses) has no message of its own. */
function causeText(err: Error): string {
  if (err.message) return err.message;
  if (err instanceof AggregateError && err.errors.length > 0) {
    return err.errors.map((e: unknown) => (e instanceof Error ? e.message || (e as NodeJS.ErrnoException).code : String(e))).join('; ');
  }
  return (err as NodeJS.ErrnoException).code ?? err.name;
}

function withDeadline<T>(p: Promise<T>, deadline: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), Math.max(0, deadline - Date.now()));
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

function isPid(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) > 0;
}

