// The Redis store (REDIS_ENABLED=true): no files. Each worker's snapshot is one STRING value, so a worker's series
// can never partly expire (the Python exporter's per-series keys and per-key TTL did). Keys are namespaced by the
// prefix, the instance (host) and the run (the primary's pid), so servers sharing a Redis never see each other's
// data; the run's part is a hash tag, so in a Redis Cluster every key of a run lives in one slot (one node) and a
// run is read and written with multi-key commands in one round trip:
//
//   <prefix>:{<instance>:<ppid>}:w:<pid>     the last snapshot of worker <pid> (JSON, codec.ts), with a TTL
//   <prefix>:{<instance>:<ppid>}:retired     the run's fold of dead workers (codec.ts's envelope), with a TTL
//   <prefix>:{<instance>:<ppid>}:workers     a SET of the pids that have a snapshot key (the index), with a TTL
//
// Round trips (the Python exporter issued ~58 commands per request, sequentially):
//   writeSnapshot   1 round trip: a pipeline of SET key json PX ttl, SADD index pid, PEXPIRE index ttl
//   readAll         2 round trips whatever the number of workers: SMEMBERS index, then one MGET
//   readSnapshot    1 (GET); removeSnapshot 1 (MULTI DEL + SREM EXEC); refresh 1 (a pipeline of PEXPIREs)
//
// The TTL is a liveness heartbeat: a worker's own writes extend its key and the index, and the primary's
// `refresh(livePids)` extends every live worker's key, the retired fold and the index, so nothing expires while its
// server lives even when a worker is blocked for longer than the TTL; everything of a run that died unseen
// disappears by itself.
//
// Connection (redis-connection.ts): one server, Redis Sentinel or Redis Cluster, connected lazily on the first
// operation, reconnecting forever with capped backoff. Commands are never queued while Redis is down and every
// operation has a deadline, so during an outage (a failover included) operations reject at once or at the deadline
// (memory stays bounded, a request is never slowed: docs/design.md, L4) with an error naming the address; a refused
// password names the setting to fix. No password ever appears in an error or a log line.

import { ErrorReply, MultiErrorReply } from 'redis';
import { PromforkError } from '../errors.js';
import { encodeRetired, encodeSnapshot, parseRetired, parseSnapshot } from './codec.js';
import type { Snapshot } from './snapshot.js';
import type { RunData, RunListing } from './run.js';
import type { SnapshotStore } from './store.js';
import {
  describeRedisTarget,
  isAuthError as isLinkAuthError,
  openRedisLink,
  resolveRedisTarget,
  scanNode,
  type RedisClient,
  type RedisCommands,
  type RedisLink,
  type RedisMode,
  type RedisTarget,
} from './redis-connection.js';

export { describeRedisTarget, type RedisCommands, type RedisTarget } from './redis-connection.js';

export interface RedisStoreLog {
  warning(msg: string): void;
  info?(msg: string): void;
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
export type RedisRun = RunListing;

/** Everything of one run, read in two round trips. */
export type RedisRunData = RunData;

const DEFAULT_TTL_SECONDS = 60;
const DEFAULT_TIMEOUT_MS = 2000;
const SCAN_COUNT = 1000;

/** A prefix or instance name that keeps the run's hash tag intact: no `{` or `}` (and, for names, no `:` or space). */
const NAME = /^[^\s:{}]+$/;

export class RedisStore implements SnapshotStore {
  readonly kind = 'redis' as const;
  readonly prefix: string;
  readonly instance: string;
  readonly ppid: number;
  readonly ttlMs: number;
  readonly timeoutMs: number;
  /** The node-redis client, cluster or sentinel (for the Python exporter's API: `getClient()`); connected by the first operation. */
  readonly client: RedisLink['raw'];
  /** One server, Redis Sentinel or Redis Cluster. */
  readonly mode: RedisMode;
  /** Where Redis is, for messages: `host:port`, `sentinel master NAME at h:p,...`, `cluster h:p,...`. */
  readonly address: string;
  /** The target as shown in logs, password masked. */
  readonly target: string;

  private readonly link: RedisLink;
  private readonly log: RedisStoreLog;
  private readonly base: string;
  private readonly secrets: string[];
  /** Which setting holds the password ('REDIS_URL' when the URL carries one). */
  private readonly passwordSetting: string;
  private readonly addressSetting: string;
  private readonly hasPassword: boolean;
  /** The error that started the current outage; null while connected (or before the first connect). */
  private outage: Error | null = null;
  /** Set when the outage is the sentinels' refusal of REDIS_SENTINEL_PASSWORD (they, not the data nodes, said no). */
  private outageNode: string | null = null;
  /** Cluster nodes and sentinels known to be down (each logged once), by address. */
  private readonly nodesDown = new Set<string>();
  private readonly waiters = new Set<() => void>();
  private readonly pending = new Set<Promise<unknown>>();
  private closed = false;
  private closing: Promise<void> | null = null;
  /** The last retired fold written (its text), to write again if a failover lost it. */
  private lastRetired: string | null = null;

  constructor(opts: RedisStoreOptions) {
    if (!isPid(opts.ppid)) throw new TypeError(`RedisStore: ppid must be a positive integer, got ${opts.ppid}`);
    if (typeof opts.prefix !== 'string' || opts.prefix === '' || /[{}]/.test(opts.prefix)) {
      throw new PromforkError(
        'PROMFORK_ERR_REDIS_CONFIG',
        `invalid REDIS_KEY_PREFIX ${JSON.stringify(opts.prefix)}: it must be non-empty, without '{' or '}' (the run's keys share a {hash tag})`,
      );
    }
    if (!NAME.test(opts.instance)) {
      throw new PromforkError(
        'PROMFORK_ERR_REDIS_CONFIG',
        `invalid instance name ${JSON.stringify(opts.instance)} (--metrics-instance, PROMFORK_INSTANCE): Redis keys need a non-empty name without ':', '{', '}' or white space`,
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

    const t = resolveRedisTarget(opts);
    this.mode = t.mode;
    this.address = t.address;
    this.target = describeRedisTarget(opts);
    this.secrets = t.secrets;
    this.hasPassword = t.password !== null;
    this.passwordSetting = t.urlHasPassword ? 'REDIS_URL' : 'REDIS_PASSWORD';
    this.addressSetting = t.addressSetting;
    this.link = openRedisLink(t, {
      connectTimeout: this.timeoutMs,
      name: `promfork-${opts.ppid}-${process.pid}`,
      events: { error: (err, node) => this.onError(err, node), ready: (node) => this.onReady(node) },
    });
    this.client = this.link.raw;
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
    const { snapshots, problems } = await this.run('read the snapshots', () =>
      readRunWith(this.link.rawCommands, this.base, this.ppid, false),
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
    this.lastRetired = text;
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
   * nothing of a live server expires, even a worker blocked for longer than the TTL. A retired fold this store wrote
   * that is gone (a failover lost the write: replication is asynchronous) is written again at once; the workers'
   * snapshots come back with their next flush.
   */
  async refresh(pids: number[]): Promise<void> {
    const keys = [...new Set(pids.filter(isPid))].map((pid) => this.keyFor(pid));
    keys.push(this.retiredKey, this.indexKey);
    const replies = await this.run('refresh the TTLs', (c) => {
      const batch = c.multi();
      for (const key of keys) batch.pExpire(key, this.ttlMs);
      return batch.execAsPipeline();
    });
    const retired = this.lastRetired;
    if (retired !== null && Number((replies as unknown[])[keys.length - 2]) === 0) {
      await this.run('write the retired fold again', (c) => c.set(this.retiredKey, retired, { expiration: { type: 'PX', value: this.ttlMs }, condition: 'NX' }));
    }
  }

  /** Remove every key of this run (found by SCAN, so stray ones too); never another run's. */
  async clear(): Promise<void> {
    this.lastRetired = null; // the run is over: nothing to write again
    await this.run('clear the run', async () => {
      // The run's keys share one slot: one DEL per batch works in a cluster too.
      const keys = (await this.link.scan(`${globEscape(this.base)}*`, SCAN_COUNT)).filter((k) => isRunKey(k, this.base));
      for (let i = 0; i < keys.length; i += SCAN_COUNT) await this.link.rawCommands.sendCommand(['DEL', ...keys.slice(i, i + SCAN_COUNT)]);
    });
  }

  /** Wait for pending operations, then disconnect. Later operations reject. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.closing = (async () => {
      await Promise.allSettled([...this.pending]);
      this.wake();
      await this.link.close(this.timeoutMs);
    })();
    return this.closing;
  }

  // ---- for the sidecar exporter and the Python exporter's API (promfork/redis) ----

  /** Every run (`instance:ppid`) under `prefix` that has an index or a retired fold (found by SCAN), sorted. */
  static async listInstances(client: RedisCommands, prefix: string): Promise<string[]> {
    return (await listRuns((pattern) => scanNode(client, pattern, SCAN_COUNT), prefix)).map((r) => `${r.instance}:${r.ppid}`);
  }

  /**
   * Every run under `opts.prefix`, through a short-lived connection (the sidecar's discovery); `opts.ppid` and
   * `opts.instance` are not used. Rejects like any operation when Redis is unreachable.
   */
  static async listRuns(opts: Omit<RedisStoreOptions, 'ppid' | 'instance'> & { ppid?: number; instance?: string }): Promise<RedisRun[]> {
    const store = new RedisStore({ ...opts, instance: 'list', ppid: process.pid });
    try {
      return await store.run('list the runs', () => listRuns((pattern) => store.link.scan(pattern, SCAN_COUNT), store.prefix));
    } finally {
      await store.close();
    }
  }

  /** Snapshots, problems and retired fold of any run under `prefix`, in two round trips. */
  static readRun(client: RedisCommands, prefix: string, instance: string, ppid: number): Promise<RedisRunData> {
    return readRunWith(client, runBase(prefix, instance, ppid), ppid, true);
  }

  /** `RedisStore.listInstances` through this store's connection (deadline and error messages included). */
  async listInstances(): Promise<string[]> {
    return (await this.runs()).map((r) => `${r.instance}:${r.ppid}`);
  }

  /** Every run under this store's prefix, through its connection (the sidecar's discovery). */
  runs(): Promise<RunListing[]> {
    return this.run('list the runs', () => listRuns((pattern) => this.link.scan(pattern, SCAN_COUNT), this.prefix));
  }

  /** `RedisStore.readRun` through this store's connection, for any run under this store's prefix. */
  readRun(instance: string, ppid: number): Promise<RedisRunData> {
    return this.run(`read the run ${instance}:${ppid}`, () => RedisStore.readRun(this.link.rawCommands, this.prefix, instance, ppid));
  }

  // ---- connection ----

  /**
   * Run `op` once connected, within the deadline. While an outage is known, reject at once (the offline queue is
   * disabled: nothing piles up); on the first connect (or a reconnect not yet failed), wait for it until the deadline.
   */
  private run<T>(what: string, op: (c: RedisClient) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`cannot ${what}: the Redis store is closed`));
    const deadline = Date.now() + this.timeoutMs;
    const start = (): Promise<T> => {
      try {
        return op(this.link.commands);
      } catch (err) {
        return Promise.reject(err);
      }
    };
    const sent = this.link.isReady ? start() : this.connected(deadline).then(start);
    const done = withDeadline(sent, deadline, () => this.unreachable(null, `no answer within ${this.timeoutMs} ms`)).then(
      (value) => {
        if (this.outage !== null && this.link.isReady) this.onReady(null);
        return value;
      },
      (err: unknown) => {
        this.link.failed(err);
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
    // Lazy first connect (and, for a cluster or sentinel whose discovery failed, the next attempt).
    if (!this.link.isOpen) this.link.connect();
    if (this.outage !== null) return Promise.reject(this.unreachable(this.outage));
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.link.isReady) finish();
        else if (this.outage !== null || this.closed) finish();
      };
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (this.link.isReady) resolve();
        else if (this.closed) reject(new Error('the Redis store is closed'));
        else reject(this.unreachable(this.outage, this.outage ? undefined : `not connected within ${this.timeoutMs} ms`));
      };
      const timer = setTimeout(finish, Math.max(0, deadline - Date.now()));
      this.waiters.add(check);
    });
  }

  /**
   * `node`: one cluster node or sentinel failed (logged once until it is back), not the whole connection, unless
   * it refused the password before the connection was ever ready (then nothing works: that is the outage).
   */
  private onError(err: Error, node: string | null): void {
    if (this.closed) return;
    if (node !== null && !(isAuthError(err) && !this.link.isReady)) {
      if (!this.nodesDown.has(node)) {
        this.nodesDown.add(node);
        const what = isAuthError(err) ? this.authError(err, node).message : this.redact(`${node} is unreachable (${causeText(err)})`);
        const effect = isSentinel(node)
          ? 'the other sentinels are asked meanwhile'
          : 'the runs on its slots are not stored until it or a replica that takes over answers';
        this.log.warning(`metrics: Redis ${this.mode} at ${this.address}: ${what}; ${effect}`);
      }
      return;
    }
    const first = this.outage === null;
    this.outage = err;
    this.outageNode = node !== null && isSentinel(node) ? node : null;
    if (first) {
      const what = isAuthError(this.outage) ? this.authError(this.outage, this.outageNode).message : this.unreachable(this.outage).message;
      this.log.warning(`metrics: ${what}; snapshots are not stored until it is back (reconnecting in the background)`);
    }
    this.wake();
  }

  private onReady(node: string | null): void {
    if (node !== null) {
      if (this.nodesDown.delete(node)) this.log.info?.(`metrics: Redis ${this.mode} at ${this.address}: ${node} is reachable again`);
      return;
    }
    // Sentinels report no recovery of their own: a ready connection clears them (logged again if they fail again).
    for (const n of this.nodesDown) if (isSentinel(n)) this.nodesDown.delete(n);
    if (this.outage !== null) {
      this.outage = null;
      this.outageNode = null;
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
    if (isAuthError(this.outage)) return this.authError(this.outage!, this.outageNode);
    return this.unreachable(this.outage ?? err);
  }

  private unreachable(cause: Error | null, detail?: string): PromforkError {
    if (cause !== null && isAuthError(cause)) return this.authError(cause, cause === this.outage ? this.outageNode : null);
    const why = detail ?? (cause ? causeText(cause) : 'not connected');
    return new PromforkError(
      'PROMFORK_ERR_REDIS_UNREACHABLE',
      this.redact(`Redis at ${this.address} is unreachable (${why}); check ${this.addressSetting} and that Redis is running`),
    );
  }

  /** `node` given: that cluster node or sentinel refused (a sentinel's password is REDIS_SENTINEL_PASSWORD). */
  private authError(cause: Error, node: string | null = null): PromforkError {
    const reply = causeText(cause);
    const where = node === null ? `Redis at ${this.address}` : `Redis at ${this.address}: node ${node}`;
    let msg: string;
    if (node !== null && isSentinel(node)) {
      msg = `Redis at ${this.address}: ${node} refused the password (${reply}); check REDIS_SENTINEL_PASSWORD (the sentinels' requirepass)`;
    } else if (/^NOAUTH\b/.test(reply) && !this.hasPassword) {
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

// ---- reading a run ----

/** `<prefix>:{<instance>:<ppid>}:`: the braces are the run's hash tag (one cluster slot for all its keys). */
function runBase(prefix: string, instance: string, ppid: number): string {
  return `${prefix}:{${instance}:${ppid}}:`;
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

/** The runs under `prefix`, from `scan` (one node's SCAN, or every master's in a cluster). */
async function listRuns(scan: (pattern: string) => Promise<string[]>, prefix: string): Promise<RedisRun[]> {
  const head = `${prefix}:`;
  const runs = new Map<string, RedisRun>();
  // A run with a retired fold but no live snapshot (every worker folded, successors not yet written) is a run too.
  for (const key of await scan(`${globEscape(head)}{*`)) {
    const m = /^\{([^\s:{}]+):([1-9]\d*)\}:(?:workers|retired)$/.exec(key.slice(head.length));
    if (!key.startsWith(head) || m === null) continue; // another prefix that starts with this one
    runs.set(`${m[1]}:${m[2]}`, { instance: m[1]!, ppid: Number(m[2]) });
  }
  return [...runs.values()].sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : a.ppid - b.ppid));
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

/** A node label of a sentinel ('sentinel HOST:PORT', 'a sentinel', 'the sentinels'). */
function isSentinel(node: string): boolean {
  return /sentinel/.test(node);
}

function isAuthError(err: Error | null): boolean {
  return err !== null && isLinkAuthError(new Error(causeText(err)));
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

