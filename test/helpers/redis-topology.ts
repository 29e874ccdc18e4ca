// Real Redis topologies on loopback, for the tests and the Redis benchmark (no node:test hooks here):
// - a Redis Cluster of N masters (and R replicas each): redis-server --cluster-enabled yes on free ports, joined by
//   `redis-cli --cluster create`, ready once every node reports cluster_state:ok and the same slot map;
// - Redis Sentinel: a master, its replicas and S sentinels (redis-server --sentinel), ready once every sentinel
//   knows the master, every replica and the other sentinels.
// Every process is a RedisServer (test/helpers/redis-server.ts): stopped by pid, killed by pid at exit. Each
// topology has its own private temporary directory (cluster node files, sentinel configurations), removed by stop().

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';
import { startRedisServer, type RedisServer, type RedisTls } from './redis-server.js';
import { findTool, missingToolMessage } from './tools.js';

export const REDIS_CLI = process.env.PROMFORK_TEST_REDIS_CLI ?? findTool('redis-cli') ?? 'redis-cli';

const DEADLINE_MS = 30_000;

export interface RedisCluster {
  /** Every node, masters first in the order they were started. */
  readonly nodes: RedisServer[];
  /** `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...` (seed nodes: every master; no password in it). */
  readonly url: string;
  readonly password: string | undefined;
  /** The node that currently serves `key`'s slot as master (CLUSTER SHARDS/SLOTS asked of a live node). */
  masterOf(key: string): Promise<RedisServer>;
  /** The current masters (live nodes whose role is master and that own slots). */
  masters(): Promise<RedisServer[]>;
  /** Resolves once every live node reports cluster_state:ok and agrees on the slot map. */
  waitHealthy(): Promise<void>;
  /** Stops every node by pid (SIGTERM, then SIGKILL) and removes the directory. Idempotent. */
  stop(): Promise<void>;
}

export interface RedisSentinelSetup {
  /** The first master (it may be a replica after a failover). */
  readonly master: RedisServer;
  readonly replicas: RedisServer[];
  readonly sentinels: RedisServer[];
  readonly masterName: string;
  /** `redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,.../NAME` (no password in it). */
  readonly url: string;
  /** Password of the data nodes (requirepass, masterauth, the sentinels' auth-pass). */
  readonly password: string | undefined;
  /** Password of the sentinels (their requirepass). */
  readonly sentinelPassword: string | undefined;
  /** The data node the sentinels currently name as master. */
  currentMaster(): Promise<RedisServer>;
  /**
   * SENTINEL FAILOVER, then waits until every live sentinel names a new master, that node answers ROLE master and
   * the old master (when alive) has become its replica. Resolves with the new master.
   */
  failover(): Promise<RedisServer>;
  /** Resolves once every live sentinel names `node` as master and `node` answers ROLE master. */
  waitMaster(node: RedisServer): Promise<void>;
  stop(): Promise<void>;
}

/** Runs redis-cli; a missing binary is an error naming the package to install. */
function redisCli(args: string[], password: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    // The password through the environment, never on the command line (visible in ps).
    const env = { ...process.env, ...(password !== undefined ? { REDISCLI_AUTH: password } : {}) };
    execFile(REDIS_CLI, args, { env, timeout: DEADLINE_MS }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error(REDIS_CLI === 'redis-cli' ? missingToolMessage('redis-cli') : `${REDIS_CLI} does not exist (PROMFORK_TEST_REDIS_CLI)`));
      } else if (err) {
        reject(new Error(`${REDIS_CLI} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      } else {
        resolve(stdout);
      }
    });
  });
}

async function poll<T>(what: string, fn: () => Promise<T | undefined>, ms = DEADLINE_MS): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stopAll(servers: RedisServer[], dir: string): Promise<void> {
  await Promise.allSettled(servers.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
}

/** Is the process running (a killed node is not asked anything)? */
function alive(s: RedisServer): boolean {
  if (s.pid === 0) return false;
  try {
    process.kill(s.pid, 0);
    return true;
  } catch {
    return false;
  }
}

// ---- cluster ----

/** The CRC16 (XMODEM) slot of `key`, hash tag included: what Redis Cluster computes. */
export function keySlot(key: string): number {
  let k = Buffer.from(key);
  const open = k.indexOf('{');
  if (open >= 0) {
    const close = k.indexOf('}', open + 1);
    if (close > open + 1) k = k.subarray(open + 1, close);
  }
  let crc = 0;
  for (const byte of k) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

export async function startRedisCluster(opts: { masters?: number; replicas?: number; password?: string; tls?: RedisTls } = {}): Promise<RedisCluster> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicas ?? 0;
  const password = opts.password;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-redis-cluster-'));
  const nodes: RedisServer[] = [];
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      nodes.push(
        await startRedisServer({
          password,
          ...(opts.tls ? { tls: opts.tls } : {}),
          args: async (port) => [
            ...(opts.tls ? ['--tls-cluster', 'yes'] : []),
            '--cluster-enabled', 'yes',
            // Its own bus port (not port + 10000, which may be above 65535 or taken).
            '--cluster-port', String(await freePort()),
            '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
            '--cluster-node-timeout', '1000',
            // A replica takes over at once, whatever its replication lag (the tests kill masters).
            '--cluster-replica-validity-factor', '0',
            '--dir', dir,
            ...(password !== undefined ? ['--masterauth', password] : []),
          ],
        }),
      );
    }
    await redisCli(
      [
        ...(opts.tls ? ['--tls', '--cacert', opts.tls.ca] : []),
        '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes',
      ],
      password,
    );
  } catch (err) {
    await stopAll(nodes, dir);
    throw err;
  }
  const byPort = new Map(nodes.map((n) => [n.port, n]));
  let stopped = false;

  /** [start, end, master port] of every slot range, from a live node. */
  const slotMap = async (from: RedisServer): Promise<[number, number, number][]> => {
    const reply = JSON.parse(await from.cli('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
    return reply.map(([a, b, m]) => [a, b, Number(m[1])] as [number, number, number]).sort((x, y) => x[0] - y[0]);
  };

  const cluster: RedisCluster = {
    nodes,
    url: `${opts.tls ? 'rediss' : 'redis'}+cluster://${nodes.slice(0, masters).map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    password,
    async waitHealthy() {
      await poll('the cluster to be healthy (cluster_state:ok, one slot map on every live node)', async () => {
        const live = nodes.filter(alive);
        const maps: string[] = [];
        for (const n of live) {
          if (!/cluster_state:ok/.test(await n.cli('CLUSTER', 'INFO'))) return undefined;
          const map = await slotMap(n);
          if (map.reduce((a, [s, e]) => a + e - s + 1, 0) !== 16384) return undefined;
          if (map.some(([, , port]) => !alive(byPort.get(port)!))) return undefined;
          maps.push(JSON.stringify(map));
        }
        return new Set(maps).size === 1 ? true : undefined;
      });
    },
    async masterOf(key: string) {
      const slot = keySlot(key);
      const from = nodes.find(alive);
      if (!from) throw new Error('no cluster node is running');
      const range = (await slotMap(from)).find(([a, b]) => slot >= a && slot <= b);
      if (!range) throw new Error(`slot ${slot} of ${key} is not served`);
      return byPort.get(range[2])!;
    },
    async masters() {
      const from = nodes.find(alive);
      if (!from) throw new Error('no cluster node is running');
      const ports = new Set((await slotMap(from)).map(([, , p]) => p));
      return nodes.filter((n) => ports.has(n.port));
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopAll(nodes, dir);
    },
  };
  try {
    await cluster.waitHealthy();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

// ---- sentinel ----

export async function startRedisSentinel(
  opts: { replicas?: number; sentinels?: number; password?: string; sentinelPassword?: string; masterName?: string; tls?: RedisTls } = {},
): Promise<RedisSentinelSetup> {
  const replicaCount = opts.replicas ?? 1;
  const sentinelCount = opts.sentinels ?? 3;
  const masterName = opts.masterName ?? 'promfork-master';
  const { password, sentinelPassword } = opts;
  const quorum = Math.floor(sentinelCount / 2) + 1;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-redis-sentinel-'));
  const all: RedisServer[] = [];
  const auth = password !== undefined ? ['--masterauth', password] : [];
  let master: RedisServer;
  const replicas: RedisServer[] = [];
  const sentinels: RedisServer[] = [];
  try {
    const tls = opts.tls ? { tls: opts.tls } : {};
    master = await startRedisServer({ password, ...tls, args: () => auth });
    all.push(master);
    for (let i = 0; i < replicaCount; i++) {
      const r = await startRedisServer({ password, ...tls, args: () => [...auth, '--replicaof', '127.0.0.1', String(master.port)] });
      replicas.push(r);
      all.push(r);
    }
    for (let i = 0; i < sentinelCount; i++) {
      const s = await startRedisServer({
        password: sentinelPassword,
        ...tls,
        config: (port) => ({
          path: path.join(dir, `sentinel-${port}.conf`),
          text: [
            `sentinel monitor ${masterName} 127.0.0.1 ${master.port} ${quorum}`,
            `sentinel down-after-milliseconds ${masterName} 1000`,
            `sentinel failover-timeout ${masterName} 10000`,
            `sentinel parallel-syncs ${masterName} 1`,
            ...(password !== undefined ? [`sentinel auth-pass ${masterName} ${password}`] : []),
            // The other sentinels are found through the master's hello channel; they authenticate with this.
            ...(sentinelPassword !== undefined ? [`sentinel sentinel-pass ${sentinelPassword}`] : []),
            '',
          ].join('\n'),
        }),
        args: () => ['--sentinel', '--dir', dir],
      });
      sentinels.push(s);
      all.push(s);
    }
  } catch (err) {
    await stopAll(all, dir);
    throw err;
  }
  const dataNodes = [master, ...replicas];
  const byPort = new Map(dataNodes.map((n) => [n.port, n]));
  let stopped = false;

  const namedMaster = async (s: RedisServer): Promise<number> => {
    const [, port] = JSON.parse(await s.cli('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)) as [string, string];
    return Number(port);
  };
  const role = async (n: RedisServer): Promise<string> => (JSON.parse(await n.cli('ROLE')) as [string])[0];

  const setup: RedisSentinelSetup = {
    master,
    replicas,
    sentinels,
    masterName,
    url: `${opts.tls ? 'rediss' : 'redis'}+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${masterName}`,
    password,
    sentinelPassword,
    async currentMaster() {
      const s = sentinels.find(alive);
      if (!s) throw new Error('no sentinel is running');
      const n = byPort.get(await namedMaster(s));
      if (!n) throw new Error('the sentinels name an unknown master');
      return n;
    },
    async waitMaster(node: RedisServer) {
      await poll(`every sentinel to name 127.0.0.1:${node.port} as master`, async () => {
        for (const s of sentinels.filter(alive)) if ((await namedMaster(s)) !== node.port) return undefined;
        return (await role(node)) === 'master' ? true : undefined;
      });
    },
    async failover() {
      const old = await setup.currentMaster();
      const s = sentinels.find(alive)!;
      await s.cli('SENTINEL', 'FAILOVER', masterName);
      const next = await poll('a new master after SENTINEL FAILOVER', async () => {
        const n = byPort.get(await namedMaster(s));
        return n !== undefined && n !== old ? n : undefined;
      });
      await setup.waitMaster(next);
      if (alive(old)) {
        await poll(`the old master 127.0.0.1:${old.port} to become a replica`, async () => ((await role(old)) === 'slave' ? true : undefined));
      }
      return next;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopAll(all, dir);
    },
  };
  try {
    // Ready: every sentinel knows the master, every replica (connected) and every other sentinel.
    await poll('the sentinels to know the master, its replicas and each other', async () => {
      for (const s of sentinels) {
        if ((await namedMaster(s)) !== master.port) return undefined;
        const info = JSON.parse(await s.cli('SENTINEL', 'MASTER', masterName)) as string[];
        const field = (k: string) => Number(info[info.indexOf(k) + 1]);
        if (field('num-slaves') !== replicaCount || field('num-other-sentinels') !== sentinelCount - 1) return undefined;
      }
      for (const r of replicas) if (!/master_link_status:up/.test(await r.cli('INFO', 'replication'))) return undefined;
      return true;
    });
  } catch (err) {
    await setup.stop();
    throw err;
  }
  return setup;
}
