// Where Redis is and how to reach it: one server, Redis Sentinel or Redis Cluster (docs/storage.md, "Redis
// topologies"). Parses the settings (REDIS_URL, or REDIS_HOST, REDIS_PORT, REDIS_DB, REDIS_SENTINEL_MASTER,
// REDIS_CLUSTER) into a target, and opens it with node-redis (createClient, createSentinel, createCluster) behind
// one small interface, so the store does not care which topology it talks to:
//
//   redis://[[user]:password@]host[:port][/db]                                 one server (rediss:// for TLS)
//   redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER[/db] sentinels, 26379 by default
//   redis+cluster://[[user]:password@]host[:port][,host[:port]...]             seed nodes, 6379 by default
//
// (rediss+sentinel:// and rediss+cluster:// use TLS to every node, sentinels included.) The password in the URL,
// or REDIS_PASSWORD, is the data nodes'; the sentinels' own password is REDIS_SENTINEL_PASSWORD. No password is
// ever part of an error or a log line: every message goes through `redact`.

import { ErrorReply, createClient, createCluster, createSentinel } from 'redis';
import { PromforkError } from '../errors.js';

export type RedisMode = 'standalone' | 'sentinel' | 'cluster';

/** The settings that say where Redis is. */
export interface RedisTarget {
  /** REDIS_URL: wins over host, port, db and the mode settings. */
  url?: string | null;
  /** REDIS_HOST: one host, or (sentinel, cluster) a comma-separated list of host[:port]. */
  host: string;
  port: number;
  db: number;
  password?: string | null;
  /** REDIS_SENTINEL_MASTER: the master's name; turns Sentinel on (REDIS_HOST lists the sentinels). */
  sentinelMaster?: string | null;
  /** REDIS_SENTINEL_PASSWORD: the sentinels' own password (their requirepass). */
  sentinelPassword?: string | null;
  /** REDIS_CLUSTER: REDIS_HOST lists seed nodes of a Redis Cluster. */
  cluster?: boolean;
}

export interface RedisNodeAddress {
  host: string;
  port: number;
}

export interface ResolvedTarget {
  mode: RedisMode;
  /** The server, the sentinels or the cluster's seed nodes. */
  nodes: RedisNodeAddress[];
  masterName: string | null;
  db: number;
  tls: boolean;
  username: string | null;
  password: string | null;
  sentinelPassword: string | null;
  /** The URL's password was given (so REDIS_URL is the setting to fix). */
  urlHasPassword: boolean;
  fromUrl: boolean;
  /** For messages: `host:port`, `sentinel MASTER at h:p,h:p`, `cluster h:p,h:p`. */
  address: string;
  /** The settings that say where Redis is, for messages. */
  addressSetting: string;
  /** Every form of every password, to mask in messages. */
  secrets: string[];
}

const DEFAULT_PORT = 6379;
const DEFAULT_SENTINEL_PORT = 26379;
const MAX_BACKOFF_MS = 5000;
/** Bounds each connection's command queue when Redis stops answering without closing the connection. */
const MAX_QUEUED_COMMANDS = 1000;

const SCHEMES: Record<string, { mode: RedisMode; tls: boolean }> = {
  'redis:': { mode: 'standalone', tls: false },
  'rediss:': { mode: 'standalone', tls: true },
  'redis+sentinel:': { mode: 'sentinel', tls: false },
  'rediss+sentinel:': { mode: 'sentinel', tls: true },
  'redis+cluster:': { mode: 'cluster', tls: false },
  'rediss+cluster:': { mode: 'cluster', tls: true },
};

/** The URL forms, for messages and the settings' help. */
export const REDIS_URL_FORMS =
  'redis://[[user]:password@]host[:port][/db], redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER[/db] or redis+cluster://[[user]:password@]host[:port][,host[:port]...] (rediss... for TLS)';

function configError(msg: string): PromforkError {
  return new PromforkError('PROMFORK_ERR_REDIS_CONFIG', msg);
}

function secretForms(...values: (string | null | undefined)[]): string[] {
  const out = new Set<string>();
  for (const v of values) {
    if (!v) continue;
    out.add(v);
    out.add(encodeURIComponent(v));
    try {
      out.add(decodeURIComponent(v));
    } catch {
      // a malformed escape: the raw form is masked already
    }
  }
  return [...out].filter((s) => s !== '');
}

function formatAddress(n: RedisNodeAddress): string {
  return `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`;
}

/** `host[:port]` or `[v6][:port]` items of a comma-separated list; `what` names the setting in errors. */
function parseHostList(list: string, defaultPort: number, what: string): RedisNodeAddress[] {
  const items = list.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) throw configError(`${what}: empty host in the list (expected host[:port][,host[:port]...])`);
  return items.map((item) => {
    const m = /^(?:\[([0-9A-Za-z:.%]+)\]|([^\s:[\]/@{}]+))(?::(\d+))?$/.exec(item);
    if (m === null) throw configError(`${what}: ${JSON.stringify(item)} is not host[:port] ([v6 address][:port] for IPv6)`);
    const port = m[3] !== undefined ? Number(m[3]) : defaultPort;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw configError(`${what}: port ${m[3]} of ${JSON.stringify(item)} is not 1-65535`);
    return { host: m[1] ?? m[2]!, port };
  });
}

function parseDb(text: string, what: string): number {
  if (!/^\d+$/.test(text)) throw configError(`${what}: the database must be a number (0, 1, ...), got ${JSON.stringify(text)}`);
  return Number(text);
}

/** Reads the settings into a target; a mistake is a PROMFORK_ERR_REDIS_CONFIG naming the setting, never a password. */
export function resolveRedisTarget(opts: RedisTarget): ResolvedTarget {
  const password = opts.password ? opts.password : null;
  const sentinelPassword = opts.sentinelPassword ? opts.sentinelPassword : null;
  if (opts.url) {
    if (opts.sentinelMaster) {
      throw configError('REDIS_SENTINEL_MASTER goes with REDIS_HOST; with REDIS_URL, name the master in the URL: redis+sentinel://host:port[,host:port...]/MASTER');
    }
    if (opts.cluster) throw configError('REDIS_CLUSTER goes with REDIS_HOST; with REDIS_URL, use redis+cluster://host:port[,host:port...]');
    return resolveUrl(opts.url, password, sentinelPassword);
  }
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) {
    throw configError(`REDIS_PORT must be a port number (1-65535), got ${opts.port}`);
  }
  if (!Number.isInteger(opts.db) || opts.db < 0) throw configError(`REDIS_DB must be a database number (0, 1, ...), got ${opts.db}`);
  const secrets = secretForms(password, sentinelPassword);
  const base = { db: opts.db, tls: false, username: null, password, sentinelPassword, urlHasPassword: false, fromUrl: false, secrets };
  const host = opts.host || 'localhost';
  if (opts.sentinelMaster && opts.cluster) throw configError('REDIS_SENTINEL_MASTER and REDIS_CLUSTER exclude each other: a Redis Cluster has no sentinels');
  if (opts.sentinelMaster) {
    const nodes = parseHostList(host, DEFAULT_SENTINEL_PORT, 'REDIS_HOST (the sentinels)');
    return {
      ...base,
      mode: 'sentinel',
      nodes,
      masterName: opts.sentinelMaster,
      address: `sentinel master ${opts.sentinelMaster} at ${nodes.map(formatAddress).join(',')}`,
      addressSetting: 'REDIS_HOST and REDIS_SENTINEL_MASTER',
    };
  }
  if (opts.cluster) {
    if (opts.db !== 0) throw configError(`REDIS_DB must be 0 with REDIS_CLUSTER (a Redis Cluster has only database 0), got ${opts.db}`);
    const nodes = parseHostList(host, opts.port, 'REDIS_HOST (the cluster nodes)');
    return { ...base, mode: 'cluster', nodes, masterName: null, address: `cluster ${nodes.map(formatAddress).join(',')}`, addressSetting: 'REDIS_HOST and REDIS_PORT' };
  }
  if (host.includes(',')) {
    throw configError(`REDIS_HOST lists several hosts (${host}): set REDIS_SENTINEL_MASTER for sentinels or REDIS_CLUSTER=true for cluster nodes`);
  }
  const node = { host, port: opts.port };
  return { ...base, mode: 'standalone', nodes: [node], masterName: null, address: formatAddress(node), addressSetting: 'REDIS_HOST and REDIS_PORT' };
}

function resolveUrl(url: string, fallbackPassword: string | null, sentinelPassword: string | null): ResolvedTarget {
  // Parsed by hand: WHATWG URL does not take a list of hosts. scheme://[userinfo@]hosts[/path][?query][#fragment]
  // The user-info runs to the last '@' before the path: a password may hold an unescaped '@'.
  const m = /^([a-z+]+:)\/\/(?:([^/?#]*)@)?([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(url);
  const scheme = m ? SCHEMES[m[1]!.toLowerCase()] : undefined;
  if (!m || !scheme) throw configError(`REDIS_URL ${maskUrlText(url)} is not a Redis URL (expected ${REDIS_URL_FORMS})`);
  const [, , info, hostText, pathText, query] = m;
  const shown = maskUrlText(url);
  if (query !== undefined || m[6] !== undefined) throw configError(`REDIS_URL ${shown}: no ?query or #fragment is read; remove it (settings are separate: see docs/configuration.md)`);
  let username: string | null = null;
  let urlPassword: string | null = null;
  if (info !== undefined) {
    const colon = info.indexOf(':');
    const decode = (s: string) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw configError(`REDIS_URL ${shown}: a malformed %-escape in the user or password`);
      }
    };
    username = decode(colon >= 0 ? info.slice(0, colon) : info) || null;
    urlPassword = colon >= 0 ? decode(info.slice(colon + 1)) || null : null;
  }
  const secrets = secretForms(fallbackPassword, sentinelPassword, urlPassword, info !== undefined && info.includes(':') ? info.slice(info.indexOf(':') + 1) : null);
  if (hostText === '') throw configError(`REDIS_URL ${shown} has no host`);
  const path = pathText!.split('/').slice(1);
  const common = {
    tls: scheme.tls,
    username,
    // REDIS_PASSWORD applies when the URL carries no password.
    password: urlPassword ?? fallbackPassword,
    sentinelPassword,
    urlHasPassword: urlPassword !== null,
    fromUrl: true,
    addressSetting: 'REDIS_URL',
    secrets,
  };
  if (scheme.mode === 'standalone') {
    const nodes = parseHostList(hostText!, DEFAULT_PORT, `REDIS_URL ${shown}`);
    if (nodes.length > 1) throw configError(`REDIS_URL ${shown} lists several hosts: use redis+sentinel://.../MASTER for sentinels or redis+cluster:// for cluster nodes`);
    if (path.length > 1 || (path.length === 1 && path[0] !== '' && !/^\d+$/.test(path[0]!))) {
      throw configError(`REDIS_URL ${shown}: the path must be a database number (/0, /1, ...)`);
    }
    const db = path.length === 1 && path[0] !== '' ? Number(path[0]) : 0;
    return { ...common, mode: 'standalone', nodes, masterName: null, db, address: formatAddress(nodes[0]!) };
  }
  if (scheme.mode === 'sentinel') {
    const nodes = parseHostList(hostText!, DEFAULT_SENTINEL_PORT, `REDIS_URL ${shown}`);
    const masterName = path[0] ? decodeURIComponent(path[0]) : '';
    if (masterName === '' || path.length > 2) throw configError(`REDIS_URL ${shown}: a sentinel URL names the master: redis+sentinel://host[:port][,host[:port]...]/MASTER[/db]`);
    const db = path.length === 2 ? parseDb(path[1]!, `REDIS_URL ${shown}`) : 0;
    return { ...common, mode: 'sentinel', nodes, masterName, db, address: `sentinel master ${masterName} at ${nodes.map(formatAddress).join(',')}` };
  }
  const nodes = parseHostList(hostText!, DEFAULT_PORT, `REDIS_URL ${shown}`);
  if (path.length > 1 || (path.length === 1 && path[0] !== '' && path[0] !== '0')) {
    throw configError(`REDIS_URL ${shown}: a Redis Cluster has only database 0; remove the path`);
  }
  return { ...common, mode: 'cluster', nodes, masterName: null, db: 0, address: `cluster ${nodes.map(formatAddress).join(',')}` };
}

/** The target for logs, passwords masked: `redis://:****@host:port/db` (the URL as given, masked, when set). */
export function describeRedisTarget(opts: RedisTarget): string {
  if (opts.url) return maskUrlText(opts.url);
  const host = opts.host || 'localhost';
  const auth = opts.password ? ':****@' : '';
  if (opts.sentinelMaster) return `redis+sentinel://${auth}${host}/${opts.sentinelMaster}${opts.db ? `/${opts.db}` : ''}`;
  if (opts.cluster) return `redis+cluster://${auth}${host}`;
  return `redis://${auth}${host.includes(':') ? `[${host}]` : host}:${opts.port}${opts.db ? `/${opts.db}` : ''}`;
}

/**
 * Masks the user-info of a URL (as given, parsed or not): everything between the scheme and the last '@', since a
 * password may itself hold '@', ':' or '/'. The user name stays when it is plainly one (before the first ':').
 */
export function maskUrlText(text: string): string {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)([^]*)@/.exec(text);
  if (!m) return text;
  const info = m[2]!;
  const colon = info.indexOf(':');
  // The user name is kept when it is plain (`user:****@`, `:****@` with none); anything else is masked whole.
  const user = colon >= 0 && !/[@/]/.test(info.slice(0, colon)) ? `${info.slice(0, colon)}:` : '';
  return `${m[1]}${user}****@${text.slice(m[0].length)}`;
}

// ---- the connection ----

/** The part of a node-redis client (any RESP version, any modules) the static helpers use. */
export interface RedisCommands {
  sendCommand(args: string[]): Promise<unknown>;
}

/** The node-redis client type whose typed commands (get, set, multi ... execAsPipeline) the store uses. */
export type RedisClient = ReturnType<typeof createStandalone>;
type Cluster = ReturnType<typeof createClusterClient>;
type Sentinel = ReturnType<typeof createSentinelClient>;

export interface LinkEvents {
  /** The connection (or, `node` given, one cluster node or sentinel) failed. */
  error(err: Error, node: string | null): void;
  /** Ready again (or, `node` given, that cluster node is). */
  ready(node: string | null): void;
}

/**
 * One connection to Redis, whatever the topology. `commands` has the typed commands, routed by key (one slot per
 * call in a cluster: the store's keys of a run share a hash tag). Connecting is lazy (`connect()`), then goes on
 * forever with capped backoff until `close()`; while the connection is down, commands are not queued.
 */
export interface RedisLink {
  readonly mode: RedisMode;
  /** The node-redis object: a client, a cluster or a sentinel. */
  readonly raw: RedisClient | Cluster | Sentinel;
  /** The typed commands (the same surface on a client, a cluster and a sentinel). */
  readonly commands: RedisClient;
  /** Raw commands, routed by their first key (args[1]); a command without a key goes to the master (not in a cluster). */
  readonly rawCommands: RedisCommands;
  readonly isReady: boolean;
  readonly isOpen: boolean;
  /** Starts connecting, when not connected or connecting. Failures arrive as `error` events. */
  connect(): void;
  /** Every key matching `pattern` on every master (SCAN, never KEYS). */
  scan(pattern: string, count: number): Promise<string[]>;
  /**
   * An operation failed: in a cluster, a connection error may mean a master is gone and a replica took over, so the
   * slot map is read again (at most once a second). node-redis does so by itself only for nodes it was connected to.
   */
  failed(err: unknown): void;
  /** Closes gracefully within `timeoutMs`, else destroys. */
  close(timeoutMs: number): Promise<void>;
}

interface LinkOptions {
  connectTimeout: number;
  /** CLIENT SETNAME. */
  name: string;
  events: LinkEvents;
}

/** Forever, with capped exponential backoff: 100, 200, 400 ... 5000 ms. */
function backoff(retries: number): number {
  return Math.min(2 ** Math.min(retries, 16) * 100, MAX_BACKOFF_MS);
}

function nodeOptions(t: ResolvedTarget, o: LinkOptions) {
  return {
    RESP: 2 as const, // every Redis version (HELLO/RESP3 needs Redis 6)
    disableOfflineQueue: true,
    disableClientInfo: true,
    maintNotifications: 'disabled' as const,
    commandsQueueMaxLength: MAX_QUEUED_COMMANDS,
    name: o.name,
    ...(t.username !== null ? { username: t.username } : {}),
    ...(t.password !== null ? { password: t.password } : {}),
  };
}

function socketOptions(t: ResolvedTarget, o: LinkOptions) {
  return { connectTimeout: o.connectTimeout, reconnectStrategy: backoff, ...(t.tls ? { tls: true as const } : {}) };
}

function createStandalone(t: ResolvedTarget, o: LinkOptions) {
  const node = t.nodes[0]!;
  return createClient({ ...nodeOptions(t, o), database: t.db, socket: { ...socketOptions(t, o), host: node.host, port: node.port } });
}

function createClusterClient(t: ResolvedTarget, o: LinkOptions) {
  const socket = socketOptions(t, o);
  return createCluster({
    RESP: 2,
    rootNodes: t.nodes.map((n) => ({ socket: { ...socket, host: n.host, port: n.port } })),
    defaults: { ...nodeOptions(t, o), socket },
    // A node that fails over: re-read the slot map after 1 s of reconnecting (not the default 5 s).
    topologyRefreshOnReconnectionAttemptStrategy: 1000,
    // Connect to a node on its first command, not all of them at discovery: a discovery while a master is down
    // (listed until its replica takes over) would otherwise wait for that master forever.
    minimizeConnections: true,
  });
}

function createSentinelClient(t: ResolvedTarget, o: LinkOptions) {
  const socket = socketOptions(t, o);
  return createSentinel({
    name: t.masterName!,
    RESP: 2,
    sentinelRootNodes: t.nodes,
    nodeClientOptions: { ...nodeOptions(t, o), database: t.db, socket },
    sentinelClientOptions: {
      disableClientInfo: true,
      maintNotifications: 'disabled',
      name: o.name,
      socket: { connectTimeout: o.connectTimeout, ...(t.tls ? { tls: true as const } : {}) },
      ...(t.sentinelPassword !== null ? { password: t.sentinelPassword } : {}),
    },
    // A failed (re)discovery gives up after 3 rounds (the connection retries on, with backoff) ...
    maxCommandRediscovers: 3,
    // ... and the topology is checked every 5 s besides the sentinels' switch-master messages.
    scanInterval: 5000,
  });
}

export function openRedisLink(t: ResolvedTarget, o: LinkOptions): RedisLink {
  if (t.mode === 'cluster') return clusterLink(t, o);
  if (t.mode === 'sentinel') return sentinelLink(t, o);
  return standaloneLink(t, o);
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function standaloneLink(t: ResolvedTarget, o: LinkOptions): RedisLink {
  const client = createStandalone(t, o);
  // Always listened to: an 'error' event without a listener would crash the process.
  client.on('error', (err: unknown) => o.events.error(asError(err), null));
  client.on('ready', () => o.events.ready(null));
  return {
    mode: 'standalone',
    raw: client,
    commands: client,
    rawCommands: client as unknown as RedisCommands,
    get isReady() {
      return client.isReady;
    },
    get isOpen() {
      return client.isOpen;
    },
    connect() {
      // connect() settles only once ready (it retries by itself); failures arrive as 'error'.
      if (!client.isOpen) client.connect().catch(() => undefined);
    },
    scan: (pattern, count) => scanNode(client as unknown as RedisCommands, pattern, count),
    failed: () => undefined, // the client reconnects to the same address by itself
    close: (timeoutMs) => closeClient(client, timeoutMs),
  };
}

/**
 * Cluster and sentinel objects do not retry their first discovery forever (a client does): `connect()` rejects when
 * no seed node or sentinel answers. This retries it with the same backoff until it works or `closed()` is true.
 */
function retryingConnect(start: () => Promise<unknown>, onFail: (err: Error) => void, closed: () => boolean): () => void {
  let connecting = false;
  let retries = 0;
  const attempt = () => {
    if (connecting || closed()) return;
    connecting = true;
    start().then(
      () => {
        connecting = false;
        retries = 0;
      },
      (err: unknown) => {
        connecting = false;
        onFail(asError(err));
        if (!closed()) setTimeout(attempt, backoff(retries++)).unref();
      },
    );
  };
  return attempt;
}

function clusterLink(t: ResolvedTarget, o: LinkOptions): RedisLink {
  const cluster = createClusterClient(t, o);
  let closed = false;
  let lastRediscover = 0;
  cluster.on('error', (err: unknown) => o.events.error(asError(err), null));
  cluster.on('node-error', (err: unknown, node: RedisNodeAddress) => o.events.error(asError(err), formatAddress(node)));
  cluster.on('node-ready', (node: RedisNodeAddress) => o.events.ready(formatAddress(node)));
  cluster.on('connect', () => o.events.ready(null));
  const connect = retryingConnect(
    () => cluster.connect(),
    (err) => o.events.error(err, null),
    () => closed || cluster.isOpen,
  );
  const raw: RedisCommands = {
    sendCommand: (args) => cluster.sendCommand(args[1], false, args),
  };
  return {
    mode: 'cluster',
    raw: cluster,
    commands: cluster as unknown as RedisClient,
    rawCommands: raw,
    get isReady() {
      return cluster.isReady;
    },
    get isOpen() {
      return cluster.isOpen;
    },
    connect,
    async scan(pattern, count) {
      // SCAN walks one node: walk every master.
      const keys = await Promise.all(
        cluster.masters.map(async (m) => scanNode((await cluster.nodeClient(m)) as unknown as RedisCommands, pattern, count)),
      );
      return [...new Set(keys.flat())];
    },
    failed(err) {
      if (closed || !cluster.isReady || err instanceof ErrorReply || Date.now() - lastRediscover < 1000) return;
      lastRediscover = Date.now();
      cluster._slots.rediscover().catch((e: unknown) => o.events.error(asError(e), null));
    },
    close(timeoutMs) {
      closed = true;
      return closeClient(cluster, timeoutMs);
    },
  };
}

function sentinelLink(t: ResolvedTarget, o: LinkOptions): RedisLink {
  const sentinel = createSentinelClient(t, o);
  let closed = false;
  /** A sentinel refused the password since the last ready: a failed discovery is then the sentinels' password. */
  let sentinelRefused = false;
  const fromSentinel = (err: Error, node: string) => {
    if (isAuthError(err)) sentinelRefused = true;
    o.events.error(err, node);
  };
  sentinel.on('error', (err: unknown) => {
    // node-redis reports a sentinel's failure as text: "obseve client error: Error: ..." (sic) or
    // "Sentinel Client (host:port): ...".
    const text = err instanceof Error ? err.message : String(err);
    const m = /^(?:obseve client error|observe client error|Sentinel Client \(([^)]*)\)): (?:Error: )?([\s\S]*)$/.exec(text);
    if (m !== null) fromSentinel(new Error(m[2]), m[1] ? `sentinel ${m[1]}` : 'a sentinel');
    // The same refusal comes again, bare (a data node's refusal arrives as a MASTER 'client-error').
    else if (sentinelRefused && isAuthError(asError(err))) fromSentinel(asError(err), 'a sentinel');
    else o.events.error(asError(err), null);
  });
  // A data node's errors are the store's outage; a sentinel's only that sentinel's (the others answer for it).
  sentinel.on('client-error', (e: { type: string; node?: RedisNodeAddress; error: unknown }) => {
    if (e.type === 'SENTINEL') fromSentinel(asError(e.error), `sentinel ${e.node ? formatAddress(e.node) : ''}`.trim());
    else o.events.error(asError(e.error), null);
  });
  sentinel.on('ready', () => {
    sentinelRefused = false;
    o.events.ready(null);
  });
  const connect = retryingConnect(
    () => sentinel.connect(),
    (err) => o.events.error(err, sentinelRefused && isAuthError(err) ? 'the sentinels' : null),
    () => closed || sentinel.isOpen,
  );
  const raw: RedisCommands = { sendCommand: (args) => sentinel.sendCommand(false, args) };
  return {
    mode: 'sentinel',
    raw: sentinel,
    commands: sentinel as unknown as RedisClient,
    rawCommands: raw,
    get isReady() {
      return sentinel.isReady;
    },
    get isOpen() {
      return sentinel.isOpen;
    },
    connect,
    scan: (pattern, count) => scanNode(raw, pattern, count),
    failed: () => undefined, // node-redis asks the sentinels again when the master's connection fails
    close(timeoutMs) {
      closed = true;
      return closeClient(sentinel, timeoutMs);
    },
  };
}

async function closeClient(c: { isOpen: boolean; isReady: boolean; close(): Promise<unknown>; destroy(): unknown }, timeoutMs: number): Promise<void> {
  if (c.isReady) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const result = await Promise.race([c.close().then(() => 'closed' as const, () => 'failed' as const), timeout]);
    clearTimeout(timer);
    if (result !== 'closed') await c.destroy();
  } else if (c.isOpen) {
    await c.destroy();
  }
}

/** Every key matching `pattern` on one node (SCAN: never blocks Redis as KEYS would); deduplicated. */
export async function scanNode(client: RedisCommands, pattern: string, count: number): Promise<string[]> {
  const keys = new Set<string>();
  let cursor = '0';
  do {
    const reply = (await client.sendCommand(['SCAN', cursor, 'MATCH', pattern, 'COUNT', String(count)])) as [unknown, unknown];
    cursor = String(reply[0]);
    const batch = reply[1];
    for (const k of Array.isArray(batch) ? batch : batch instanceof Set ? [...batch] : []) keys.add(String(k));
  } while (cursor !== '0');
  return [...keys];
}

/** A refused or missing password (WRONGPASS, NOAUTH, and the older servers' texts). */
export function isAuthError(err: Error | null): boolean {
  if (err === null) return false;
  return /^(WRONGPASS|NOAUTH)\b|invalid password|without any password configured|no password is set/i.test(err.message);
}
