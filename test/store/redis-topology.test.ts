// The Redis store against a real Redis Cluster (3 masters) and a real Redis Sentinel set-up (a master, a replica,
// 3 sentinels), both with passwords, started on loopback by the harness (test/helpers/redis-topology.ts), no mocks:
// a run's keys share one hash-tag slot and live on that slot's master, its reads and writes are one round trip on
// that node alone (INFO commandstats of every node), runs spread over the masters, discovery and clear() cover every
// master; through Sentinel the store follows a failover; wrong passwords name the setting, never the password.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PromforkError } from '../../src/errors.js';
import { RedisStore, type RedisStoreOptions } from '../../src/store/redis-store.js';
import type { Snapshot } from '../../src/store/snapshot.js';
import { keySlot, startCluster, startSentinel, type RedisCluster, type RedisSentinelSetup, type RedisServer } from '../helpers/redis.js';
import { snapshot as makeSnapshot } from '../helpers/snapshots.js';
import { until } from '../helpers/poll.js';

const PPID = process.pid; // this test process plays the primary
const PASSWORD = 'cl-Pa55/w0rd@x';
const SENTINEL_PASSWORD = 'se-Pa55w0rd#y';

const stores: RedisStore[] = [];
after(async () => {
  await Promise.all(stores.map((s) => s.close().catch(() => undefined)));
});

interface Logged {
  warnings: string[];
  infos: string[];
  log: { warning(m: string): void; info(m: string): void };
}

function logger(): Logged {
  const warnings: string[] = [];
  const infos: string[] = [];
  return { warnings, infos, log: { warning: (m) => warnings.push(m), info: (m) => infos.push(m) } };
}

function open(target: Partial<RedisStoreOptions>, opts: Partial<RedisStoreOptions> = {}): { store: RedisStore; logged: Logged } {
  const logged = logger();
  const store = new RedisStore({ host: 'unused', port: 1, db: 0, prefix: 'gunicorn', instance: 'host-a', ppid: PPID, log: logged.log, ...target, ...opts });
  stores.push(store);
  return { store, logged };
}

function snapshot(pid: number, seat: number, value = 42, ppid = PPID): Snapshot {
  return makeSnapshot(pid, seat, 1, ppid, value);
}

async function commandCalls(nodes: RedisServer[]): Promise<Map<RedisServer, Record<string, number>>> {
  return new Map(await Promise.all(nodes.map(async (n) => [n, await n.commandCalls()] as const)));
}

/** Commands each node executed while `fn` ran (INFO of the measurement left out); nodes with none are left out. */
async function commandDelta(nodes: RedisServer[], fn: () => Promise<unknown>): Promise<Map<RedisServer, Record<string, number>>> {
  const before = await commandCalls(nodes);
  await fn();
  const afterCalls = await commandCalls(nodes);
  const out = new Map<RedisServer, Record<string, number>>();
  for (const n of nodes) {
    const delta: Record<string, number> = {};
    for (const [cmd, calls] of Object.entries(afterCalls.get(n)!)) {
      const d = calls - (before.get(n)![cmd] ?? 0);
      if (d !== 0 && cmd !== 'info') delta[cmd] = d;
    }
    if (Object.keys(delta).length > 0) out.set(n, delta);
  }
  return out;
}

function assertNoSecret(where: string, text: string): void {
  for (const s of [PASSWORD, encodeURIComponent(PASSWORD), SENTINEL_PASSWORD, encodeURIComponent(SENTINEL_PASSWORD)]) {
    assert.ok(!text.includes(s), `${where} shows a password: ${text}`);
  }
}

describe('Redis Cluster (3 masters, password)', () => {
  let cluster: RedisCluster;
  let target: Partial<RedisStoreOptions>;
  let counter = 0;
  const freshPrefix = () => `c${++counter}`;

  before(async () => {
    cluster = await startCluster({ masters: 3, password: PASSWORD });
    target = { url: cluster.url, password: PASSWORD };
  });

  test('a run’s keys share one slot and live on its master; a write and a read are one round trip there, nothing elsewhere', async () => {
    const prefix = freshPrefix();
    const { store } = open(target, { prefix, instance: 'pod-1' });
    assert.equal(store.mode, 'cluster');
    assert.equal(store.keyFor(7), `${prefix}:{pod-1:${PPID}}:w:7`);
    const slot = keySlot(store.indexKey);
    assert.equal(keySlot(store.keyFor(7)), slot);
    assert.equal(keySlot(store.retiredKey), slot);
    await store.writeRetired({ folded: [] }); // connects; the handshake is not measured below
    const owner = await cluster.masterOf(store.indexKey);

    const write = await commandDelta(cluster.nodes, () => store.writeSnapshot(snapshot(7, 0, 5)));
    assert.deepEqual([...write.keys()], [owner], 'only the run’s master is written to');
    assert.deepEqual(write.get(owner), { set: 1, sadd: 1, pexpire: 1 });
    for (const key of [store.keyFor(7), store.indexKey, store.retiredKey]) assert.equal(await owner.cli('EXISTS', key), '1', key);

    for (let pid = 100; pid < 120; pid++) await store.writeSnapshot(snapshot(pid, pid - 99, pid));
    let read: Awaited<ReturnType<RedisStore['readAll']>> | undefined;
    const reads = await commandDelta(cluster.nodes, async () => {
      read = await store.readAll();
    });
    assert.deepEqual([...reads.keys()], [owner], 'only the run’s master is read');
    assert.deepEqual(reads.get(owner), { smembers: 1, mget: 1 }, '21 snapshots in two round trips, never a GET each');
    assert.deepEqual(read!.problems, []);
    assert.deepEqual(read!.snapshots.map((s) => s.pid), [7, ...Array.from({ length: 20 }, (_, i) => 100 + i)]);
    const run = await commandDelta(cluster.nodes, () => store.readRun('pod-1', PPID));
    assert.deepEqual(run.get(owner), { smembers: 1, mget: 1 }, 'the sidecar’s read: snapshots and the retired fold together');

    const heartbeat = await commandDelta(cluster.nodes, () => store.refresh([7, 100, 101]));
    assert.deepEqual(heartbeat.get(owner), { pexpire: 5 });
    assert.equal(heartbeat.size, 1);
  });

  test('runs spread over the masters; listInstances finds every run on every master; clear() removes only its own', async () => {
    const prefix = freshPrefix();
    const runs = Array.from({ length: 9 }, (_, i) => open(target, { prefix, instance: `pod-${i}`, ppid: 1000 + i }).store);
    for (const s of runs) await s.writeSnapshot(snapshot(11, 0, 1, s.ppid));
    const owners = new Set(await Promise.all(runs.map((s) => cluster.masterOf(s.indexKey))));
    assert.equal(owners.size, 3, 'these 9 runs hash to all 3 masters');
    const expected = runs.map((s) => `${s.instance}:${s.ppid}`).sort();
    assert.deepEqual(await runs[0]!.listInstances(), expected);
    assert.deepEqual(
      (await RedisStore.listRuns({ ...target, host: 'unused', port: 1, db: 0, prefix, log: logger().log })).map((r) => `${r.instance}:${r.ppid}`),
      expected,
    );
    await runs[4]!.clear();
    assert.deepEqual(await runs[4]!.readAll(), { snapshots: [], problems: [] });
    assert.deepEqual(await runs[0]!.listInstances(), expected.filter((r) => r !== `pod-4:${runs[4]!.ppid}`));
    for (const s of runs.filter((_, i) => i !== 4)) assert.equal((await s.readAll()).snapshots.length, 1);
  });

  test('REDIS_CLUSTER with REDIS_HOST listing one seed node finds the others', async () => {
    const prefix = freshPrefix();
    const seed = cluster.nodes[1]!;
    const { store } = open({ host: `127.0.0.1:${seed.port}`, port: 1, cluster: true, password: PASSWORD }, { prefix });
    for (let i = 0; i < 6; i++) {
      const s = open({ host: `127.0.0.1:${seed.port}`, port: 1, cluster: true, password: PASSWORD }, { prefix, instance: `h${i}` }).store;
      await s.writeSnapshot(snapshot(21, 0, i));
      assert.equal((await s.readSnapshot(21))!.metrics[0]!.values[0]!.value, i);
    }
    assert.equal((await store.listInstances()).length, 6);
  });

  test('a wrong password: an error naming REDIS_URL or REDIS_PASSWORD, never the password', async () => {
    const wrong = open({ url: cluster.url, password: 'Wr0ng-' + PASSWORD }, { prefix: freshPrefix() });
    const err = await wrong.store.writeSnapshot(snapshot(1, 0)).then(
      () => assert.fail('a wrong password was accepted'),
      (e: unknown) => e as Error,
    );
    assert.ok(err instanceof PromforkError, String(err));
    assert.match(err.message, /REDIS_PASSWORD/);
    assertNoSecret('the error', err.message);
    for (const line of [...wrong.logged.warnings, ...wrong.logged.infos]) assertNoSecret('a log line', line);
  });
});

describe('Redis Sentinel (a master, a replica, 3 sentinels; passwords on both)', () => {
  let setup: RedisSentinelSetup;
  let target: Partial<RedisStoreOptions>;

  before(async () => {
    setup = await startSentinel({ replicas: 1, sentinels: 3, password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD });
    target = { url: setup.url, password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD };
  });

  test('the store writes to the master the sentinels name, and follows a failover', async () => {
    const { store, logged } = open(target, { prefix: 's1' });
    assert.equal(store.mode, 'sentinel');
    await store.writeSnapshot(snapshot(5, 0, 1));
    const first = await setup.currentMaster();
    assert.equal(await first.cli('EXISTS', store.keyFor(5)), '1');
    const replica = setup.replicas[0]!;
    await until('the write reaches the replica', async () => ((await replica.cli('EXISTS', store.keyFor(5))) === '1' ? true : undefined));

    const next = await setup.failover();
    assert.notEqual(next, first);
    // The next writes go to the new master (a write may fail while the sentinels switch: it is retried here).
    await until('a write through the store lands on the new master', async () => {
      await store.writeSnapshot(snapshot(5, 0, 2)).catch(() => undefined);
      return (await next.cli('GET', store.keyFor(5))).includes('"seq":') && (await store.readSnapshot(5).catch(() => null))?.metrics[0]?.values[0]?.value === 2
        ? true
        : undefined;
    });
    assert.deepEqual((await store.readAll()).snapshots.map((s) => s.pid), [5]);
    for (const line of [...logged.warnings, ...logged.infos]) assertNoSecret('a log line', line);
  });

  test('REDIS_SENTINEL_MASTER with REDIS_HOST listing the sentinels works the same', async () => {
    const hosts = setup.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',');
    const { store } = open(
      { host: hosts, port: 1, sentinelMaster: setup.masterName, password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD, db: 2 },
      { prefix: 's2' },
    );
    await store.writeSnapshot(snapshot(8, 0, 3));
    assert.equal((await store.readSnapshot(8))!.metrics[0]!.values[0]!.value, 3);
    const master = await setup.currentMaster();
    await master.cli('SELECT', '2');
    assert.equal(await master.cli('EXISTS', store.keyFor(8)), '1', 'written to database 2');
    await master.cli('SELECT', '0');
  });

  test('a wrong sentinel password names REDIS_SENTINEL_PASSWORD; a wrong data password REDIS_PASSWORD; never a password', async () => {
    const badSentinel = open({ ...target, sentinelPassword: 'Wr0ng-' + SENTINEL_PASSWORD }, { prefix: 's3', timeoutMs: 1000 });
    const badData = open({ ...target, password: 'Wr0ng-' + PASSWORD }, { prefix: 's4', timeoutMs: 1000 });
    const errors = await Promise.all(
      [badSentinel, badData].map(({ store }) =>
        store.writeSnapshot(snapshot(1, 0)).then(
          () => assert.fail('a wrong password was accepted'),
          (e: unknown) => e as Error,
        ),
      ),
    );
    // The warning line logged at the first failure names the setting to fix.
    await until('both stores logged the refusal', async () =>
      badSentinel.logged.warnings.some((w) => /REDIS_SENTINEL_PASSWORD/.test(w)) && badData.logged.warnings.some((w) => /REDIS_PASSWORD/.test(w))
        ? true
        : undefined,
    );
    assert.ok(errors[1] instanceof PromforkError);
    for (const e of errors) assertNoSecret('the error', e.message);
    for (const { logged } of [badSentinel, badData]) for (const line of [...logged.warnings, ...logged.infos]) assertNoSecret('a log line', line);
  });
});
