// The Redis store against a real redis-server (test/helpers/redis.ts), no mocks: round trips (NaN and ±Inf
// included), the number of commands and round trips measured with INFO commandstats, key namespacing by instance
// and run, TTLs and the heartbeat, removal, corrupt values, outages (Redis killed, then back on the same port with
// the same store), authentication errors, and that no message or log line ever holds the password.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'redis';
import { PromforkError } from '../../src/errors.js';
import { RedisStore, describeRedisTarget, type RedisCommands, type RedisStoreOptions } from '../../src/store/redis-store.js';
import type { Snapshot } from '../../src/store/snapshot.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { snapshot as makeSnapshot } from '../helpers/snapshots.js';

const PPID = process.pid; // this test process plays the primary
const PASSWORD = 'pw-Sup3r$ecret/42';

let redis: RedisServer;
const stores: RedisStore[] = [];

before(async () => {
  redis = await startRedis();
});
after(async () => {
  await Promise.all(stores.map((s) => s.close().catch(() => undefined)));
});

let counter = 0;
/** A prefix no other test uses. */
function freshPrefix(): string {
  return `t${++counter}`;
}

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

function open(
  opts: Partial<RedisStoreOptions> & { server?: RedisServer } = {},
): { store: RedisStore; logged: Logged } {
  const server = opts.server ?? redis;
  const logged = logger();
  const store = new RedisStore({
    host: '127.0.0.1',
    port: server.port,
    db: 0,
    prefix: opts.prefix ?? freshPrefix(),
    instance: 'host-a',
    ppid: PPID,
    log: logged.log,
    ...opts,
  });
  stores.push(store);
  return { store, logged };
}

function snapshot(pid: number, seat: number, seq = 1, ppid = PPID, value = 42): Snapshot {
  return makeSnapshot(pid, seat, seq, ppid, value);
}

function withNonFinite(s: Snapshot): Snapshot {
  s.metrics.push({
    name: 'app_temperature',
    help: 'Odd values',
    type: 'gauge',
    aggregator: 'max',
    values: [
      { value: Number.NaN, labels: { probe: 'nan' } },
      { value: Number.POSITIVE_INFINITY, labels: { probe: 'pinf' } },
      { value: Number.NEGATIVE_INFINITY, labels: { probe: 'ninf' } },
      { value: -0.5, labels: { probe: 'finite' } },
    ],
  });
  return s;
}

/** Commandstats calls after `fn` minus before, without the INFO calls of the measurement itself. */
async function commandDelta(server: RedisServer, fn: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = await server.commandCalls();
  await fn();
  const afterCalls = await server.commandCalls();
  const delta: Record<string, number> = {};
  for (const [cmd, n] of Object.entries(afterCalls)) {
    const d = n - (before[cmd] ?? 0);
    if (d !== 0 && cmd !== 'info') delta[cmd] = d;
  }
  return delta;
}

async function keys(server: RedisServer, pattern: string): Promise<string[]> {
  return (JSON.parse(await server.cli('KEYS', pattern)) as string[]).sort();
}

/** Time `fn`'s rejection; returns the error and the elapsed milliseconds. */
async function timedRejection(fn: () => Promise<unknown>): Promise<{ err: Error; ms: number }> {
  const t0 = performance.now();
  try {
    await fn();
  } catch (err) {
    return { err: err as Error, ms: performance.now() - t0 };
  }
  assert.fail('expected a rejection');
}

/** Retry `fn` until it succeeds or the deadline passes (waiting on the client's own reconnection). */
async function eventually<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe('round trips', () => {
  test('a snapshot is read back as written, NaN and ±Inf included', async () => {
    const { store } = open();
    const s = withNonFinite(snapshot(101, 0, 7));
    const expected = structuredClone(s);
    await store.writeSnapshot(s);
    assert.deepStrictEqual(s, expected, 'the caller’s snapshot is not modified');
    const back = await store.readSnapshot(101);
    assert.deepStrictEqual(back, expected);
    const gauge = back!.metrics.find((f) => f.name === 'app_temperature')!;
    assert.ok(Number.isNaN(gauge.values[0]!.value));
    assert.equal(gauge.values[1]!.value, Infinity);
    assert.equal(gauge.values[2]!.value, -Infinity);
    // Stored as one JSON string, non-finite values in Prometheus' spellings.
    const raw = await redis.cli('GET', store.keyFor(101));
    assert.match(raw, /"value":"NaN"/);
    assert.match(raw, /"value":"\+Inf"/);
    assert.match(raw, /"value":"-Inf"/);
    assert.equal(await redis.cli('TYPE', store.keyFor(101)), 'string');
    const all = await store.readAll();
    assert.deepStrictEqual(all, { snapshots: [expected], problems: [] });
  });

  test('an unknown worker reads as null; readAll of an empty run is empty', async () => {
    const { store } = open();
    assert.equal(await store.readSnapshot(4242), null);
    assert.equal(await store.readSnapshot(-1), null);
    assert.deepStrictEqual(await store.readAll(), { snapshots: [], problems: [] });
    assert.equal(await store.readRetired(), null);
  });

  test('writes for one pid apply in call order; the last one wins', async () => {
    const { store } = open();
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.writeSnapshot(snapshot(7, 0, i + 1, PPID, i))));
    const back = await store.readSnapshot(7);
    assert.equal(back!.seq, 50);
    assert.equal(back!.metrics[0]!.values[0]!.value, 49);
  });

  test('a snapshot of another run is refused', async () => {
    const { store } = open();
    await assert.rejects(store.writeSnapshot(snapshot(5, 0, 1, PPID + 1)), /belongs to primary/);
    await assert.rejects(store.writeSnapshot(snapshot(0, 0)), /pid must be a positive integer/);
  });

  test('the retired fold round-trips, NaN and ±Inf included, with a TTL', async () => {
    const { store } = open();
    const data = { totals: [{ name: 'x', values: [1, Number.NaN, Infinity, -Infinity] }], folded: [3, 4] };
    await store.writeRetired(data);
    assert.deepStrictEqual(await store.readRetired(), structuredClone(data));
    const pttl = Number(await redis.cli('PTTL', store.retiredKey));
    assert.ok(pttl > 0 && pttl <= 60_000, `PTTL ${pttl}`);
    await store.writeRetired({ totals: [], folded: [] });
    assert.deepStrictEqual(await store.readRetired(), { totals: [], folded: [] });
  });

  test('a corrupt retired fold rejects, naming its key', async () => {
    const { store } = open();
    await redis.cli('SET', store.retiredKey, '{"version":1,"ppid":1,"data":{}}');
    await assert.rejects(store.readRetired(), (err: Error) => err.message.startsWith(`Redis key ${store.retiredKey}: holds the fold of primary 1`));
  });
});

describe('commands and round trips (INFO commandstats)', () => {
  test('writeSnapshot is one MULTI/EXEC of exactly SET, SADD and PEXPIRE', async () => {
    const { store } = open();
    await store.writeSnapshot(snapshot(11, 0, 1)); // connects first: the handshake is not counted below
    const delta = await commandDelta(redis, () => store.writeSnapshot(snapshot(11, 0, 2)));
    assert.deepStrictEqual(delta, { set: 1, sadd: 1, pexpire: 1 });
  });

  test('readAll of 20 workers is one SMEMBERS and one MGET, never a GET', async () => {
    const { store } = open();
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.writeSnapshot(snapshot(1000 + i, 19 - i))));
    let result: Awaited<ReturnType<RedisStore['readAll']>> | undefined;
    const delta = await commandDelta(redis, async () => {
      result = await store.readAll();
    });
    assert.deepStrictEqual(delta, { smembers: 1, mget: 1 });
    assert.equal(result!.problems.length, 0);
    assert.equal(result!.snapshots.length, 20);
    assert.deepStrictEqual(
      result!.snapshots.map((s) => s.seat),
      Array.from({ length: 20 }, (_, i) => i),
    );
  });

  test('readSnapshot is one GET; removeSnapshot one MULTI of DEL and SREM; refresh one pipeline of PEXPIREs', async () => {
    const { store } = open();
    await store.writeSnapshot(snapshot(21, 0));
    await store.writeSnapshot(snapshot(22, 1));
    assert.deepStrictEqual(await commandDelta(redis, () => store.readSnapshot(21)), { get: 1 });
    assert.deepStrictEqual(await commandDelta(redis, () => store.removeSnapshot(21)), { multi: 1, del: 1, srem: 1, exec: 1 });
    // Two live workers, the retired fold and the index: four PEXPIREs, no MULTI.
    assert.deepStrictEqual(await commandDelta(redis, () => store.refresh([22, 23])), { pexpire: 4 });
    assert.deepStrictEqual(await commandDelta(redis, () => store.writeRetired({})), { set: 1 });
    assert.deepStrictEqual(await commandDelta(redis, () => store.readRetired()), { get: 1 });
  });
});

describe('keys: namespaced by prefix, instance and run', () => {
  test('key names carry the prefix, the instance and the primary pid', async () => {
    const prefix = freshPrefix();
    const { store } = open({ prefix, instance: 'pod-7' });
    await store.writeSnapshot(snapshot(31, 0));
    await store.writeRetired({ folded: [] });
    // The run's part is a hash tag: in a Redis Cluster all of a run's keys are in one slot.
    assert.equal(store.keyFor(31), `${prefix}:{pod-7:${PPID}}:w:31`);
    assert.deepStrictEqual(await keys(redis, `${prefix}:*`), [
      `${prefix}:{pod-7:${PPID}}:retired`,
      `${prefix}:{pod-7:${PPID}}:w:31`,
      `${prefix}:{pod-7:${PPID}}:workers`,
    ]);
    assert.deepStrictEqual(JSON.parse(await redis.cli('SMEMBERS', store.indexKey)), ['31']);
  });

  test('two instances (and two runs) on one Redis never see each other’s snapshots', async () => {
    const prefix = freshPrefix();
    const a = open({ prefix, instance: 'host-a' }).store;
    const b = open({ prefix, instance: 'host-b' }).store;
    const c = open({ prefix, instance: 'host-a', ppid: PPID + 1 }).store;
    await a.writeSnapshot(snapshot(41, 0, 1, PPID, 1));
    await b.writeSnapshot(snapshot(41, 0, 1, PPID, 2)); // the same worker pid on another host
    await c.writeSnapshot(snapshot(42, 0, 1, PPID + 1, 3));
    await a.writeRetired({ who: 'a' });
    assert.deepStrictEqual((await a.readAll()).snapshots.map((s) => s.metrics[0]!.values[0]!.value), [1]);
    assert.deepStrictEqual((await b.readAll()).snapshots.map((s) => s.metrics[0]!.values[0]!.value), [2]);
    assert.deepStrictEqual((await c.readAll()).snapshots.map((s) => s.pid), [42]);
    assert.equal((await b.readSnapshot(41))!.metrics[0]!.values[0]!.value, 2);
    assert.equal(await a.readSnapshot(42), null);
    assert.equal(await b.readRetired(), null);

    assert.deepStrictEqual(await RedisStore.listInstances(a.client as RedisCommands, prefix), [`host-a:${PPID}`, `host-a:${PPID + 1}`, `host-b:${PPID}`]);
    // The static helpers take any node-redis client, RESP3 included.
    const resp3 = createClient({ url: redis.url, RESP: 3 });
    resp3.on('error', () => undefined);
    await resp3.connect();
    try {
      assert.deepStrictEqual(await RedisStore.listInstances(resp3, prefix), [`host-a:${PPID}`, `host-a:${PPID + 1}`, `host-b:${PPID}`]);
      const run3 = await RedisStore.readRun(resp3, prefix, 'host-a', PPID);
      assert.deepStrictEqual([run3.snapshots.map((s) => s.pid), run3.retired, run3.problems], [[41], { who: 'a' }, []]);
    } finally {
      resp3.destroy();
    }
    assert.deepStrictEqual(await a.listInstances(), [`host-a:${PPID}`, `host-a:${PPID + 1}`, `host-b:${PPID}`]);
    const runs = await RedisStore.listRuns({ host: '127.0.0.1', port: redis.port, db: 0, prefix, log: logger().log });
    assert.deepStrictEqual(runs, [
      { instance: 'host-a', ppid: PPID },
      { instance: 'host-a', ppid: PPID + 1 },
      { instance: 'host-b', ppid: PPID },
    ]);
    const run = await b.readRun('host-a', PPID);
    assert.deepStrictEqual(run.snapshots.map((s) => s.pid), [41]);
    assert.deepStrictEqual(run.retired, { who: 'a' });
    assert.deepStrictEqual(run.problems, []);
    await b.removeSnapshot(41);
    assert.equal((await a.readSnapshot(41))!.metrics[0]!.values[0]!.value, 1);
    // A run with only a retired fold (every worker folded) is still listed.
    await a.removeSnapshot(41);
    assert.deepStrictEqual(await a.listInstances(), [`host-a:${PPID}`, `host-a:${PPID + 1}`]);
  });

  test('listInstances ignores a longer prefix that starts with this one', async () => {
    const prefix = freshPrefix();
    const a = open({ prefix }).store;
    const longer = open({ prefix: `${prefix}:sub`, instance: 'x' }).store;
    await a.writeSnapshot(snapshot(51, 0));
    await longer.writeSnapshot(snapshot(52, 0));
    assert.deepStrictEqual(await a.listInstances(), [`host-a:${PPID}`]);
  });

  test('clear() removes only its own run’s keys', async () => {
    const prefix = freshPrefix();
    const mine = open({ prefix, instance: 'h1' }).store;
    const otherRun = open({ prefix, instance: 'h1', ppid: PPID * 10 + 1 }).store; // its ppid starts with ours
    const otherHost = open({ prefix, instance: 'h2' }).store;
    for (const s of [mine, otherHost]) {
      await s.writeSnapshot(snapshot(61, 0));
      await s.writeSnapshot(snapshot(62, 1));
      await s.writeRetired({ n: 1 });
    }
    await otherRun.writeSnapshot(snapshot(61, 0, 1, PPID * 10 + 1));
    await redis.cli('SET', `${prefix}:{h1:${PPID}}:notours`, 'x'); // in our namespace, but not a key we write
    await redis.cli('SET', `unrelated:${prefix}`, 'x');
    await mine.clear();
    assert.deepStrictEqual(await keys(redis, `${prefix}:{h1:${PPID}}:*`), [`${prefix}:{h1:${PPID}}:notours`]);
    assert.deepStrictEqual(await mine.readAll(), { snapshots: [], problems: [] });
    assert.equal(await mine.readRetired(), null);
    assert.equal((await otherHost.readAll()).snapshots.length, 2);
    assert.deepStrictEqual(await otherHost.readRetired(), { n: 1 });
    assert.equal((await otherRun.readAll()).snapshots.length, 1);
    assert.equal(await redis.cli('GET', `unrelated:${prefix}`), 'x');
  });
});

describe('TTL and heartbeat', () => {
  test('every key gets the TTL; refresh() extends live workers, the retired fold and the index', async () => {
    const { store } = open({ ttlSeconds: 30 });
    await store.writeSnapshot(snapshot(71, 0));
    await store.writeSnapshot(snapshot(72, 1));
    await store.writeRetired({});
    for (const key of [store.keyFor(71), store.keyFor(72), store.indexKey, store.retiredKey]) {
      const pttl = Number(await redis.cli('PTTL', key));
      assert.ok(pttl > 25_000 && pttl <= 30_000, `${key}: PTTL ${pttl}`);
      await redis.cli('PEXPIRE', key, 5000); // as if time had passed
    }
    await store.refresh([71]);
    for (const key of [store.keyFor(71), store.indexKey, store.retiredKey]) {
      const pttl = Number(await redis.cli('PTTL', key));
      assert.ok(pttl > 25_000 && pttl <= 30_000, `${key} refreshed: PTTL ${pttl}`);
    }
    const notLive = Number(await redis.cli('PTTL', store.keyFor(72)));
    assert.ok(notLive > 0 && notLive <= 5000, `a pid not given is not refreshed: PTTL ${notLive}`);
  });

  test('a retired fold lost behind the store’s back (a failover) is written again by the next refresh, never after clear()', async () => {
    const { store } = open();
    await store.writeRetired({ folded: [7], totals: 'x' });
    await redis.cli('DEL', store.retiredKey);
    const calls = await commandDelta(redis, () => store.refresh([]));
    assert.deepEqual(calls, { pexpire: 2, set: 1 });
    assert.deepStrictEqual(await store.readRetired(), { folded: [7], totals: 'x' });
    assert.ok(Number(await redis.cli('PTTL', store.retiredKey)) > 0);
    // Present: only the PEXPIREs.
    assert.deepEqual(await commandDelta(redis, () => store.refresh([])), { pexpire: 2 });
    await store.clear();
    await store.refresh([]);
    assert.equal(await redis.cli('EXISTS', store.retiredKey), '0');
  });

  test('an expired worker is simply gone from readAll (no problem reported)', async () => {
    const { store } = open({ ttlSeconds: 60 });
    await store.writeSnapshot(snapshot(81, 0));
    await store.writeSnapshot(snapshot(82, 1));
    await redis.cli('PEXPIRE', store.keyFor(81), 1);
    await eventually(async () => assert.equal(await redis.cli('EXISTS', store.keyFor(81)), '0'), 5000);
    const all = await store.readAll();
    assert.deepStrictEqual(all.snapshots.map((s) => s.pid), [82]);
    assert.deepStrictEqual(all.problems, []);
  });

  test('a worker whose key expired writes again and is back', async () => {
    const { store } = open({ ttlSeconds: 0.2 });
    await store.writeSnapshot(snapshot(91, 0, 1));
    await eventually(async () => assert.equal(await redis.cli('EXISTS', store.indexKey), '0'), 5000);
    assert.deepStrictEqual(await store.readAll(), { snapshots: [], problems: [] });
    await store.writeSnapshot(snapshot(91, 0, 2));
    assert.equal((await store.readAll()).snapshots[0]!.seq, 2);
  });
});

describe('removal and bad data', () => {
  test('removeSnapshot deletes the key and its index entry; a missing one is fine', async () => {
    const { store } = open();
    await store.writeSnapshot(snapshot(101, 0));
    await store.writeSnapshot(snapshot(102, 1));
    await store.removeSnapshot(101);
    await store.removeSnapshot(101);
    await store.removeSnapshot(999);
    assert.equal(await store.readSnapshot(101), null);
    assert.equal(await redis.cli('EXISTS', store.keyFor(101)), '0');
    assert.deepStrictEqual(JSON.parse(await redis.cli('SMEMBERS', store.indexKey)), ['102']);
    assert.deepStrictEqual((await store.readAll()).snapshots.map((s) => s.pid), [102]);
  });

  test('corrupt values are reported in problems, one line each naming the key; the good ones are returned', async () => {
    const { store } = open();
    await store.writeSnapshot(snapshot(111, 0));
    await redis.cli('SET', store.keyFor(112), 'not json{');
    await redis.cli('SET', store.keyFor(113), JSON.stringify(snapshot(999, 2))); // another pid's snapshot
    await redis.cli('SADD', store.indexKey, '112', '113', 'garbage');
    const all = await store.readAll();
    assert.deepStrictEqual(all.snapshots.map((s) => s.pid), [111]);
    assert.equal(all.problems.length, 3);
    assert.match(all.problems[0]!, new RegExp(`^Redis key ${store.indexKey}: ignoring the member "garbage", which is not a pid$`));
    assert.match(all.problems[1]!, new RegExp(`^Redis key ${store.keyFor(112)}: invalid JSON`));
    assert.equal(all.problems[2], `Redis key ${store.keyFor(113)}: holds the snapshot of pid 999, but its name says pid 113`);
    await assert.rejects(store.readSnapshot(112), (err: Error) => err.message.startsWith(`Redis key ${store.keyFor(112)}: invalid JSON`));
  });

  test('a key of the wrong type fails that operation with Redis’ reply, not the store', async () => {
    const { store } = open();
    await redis.cli('SET', store.indexKey, 'a string, not a set');
    await assert.rejects(store.readAll(), (err: Error) => {
      assert.match(err.message, new RegExp(`^Redis at 127\\.0\\.0\\.1:${redis.port}: cannot read the snapshots: WRONGTYPE`));
      return true;
    });
    await redis.cli('DEL', store.indexKey);
    await store.writeSnapshot(snapshot(121, 0));
    assert.equal((await store.readAll()).snapshots.length, 1);
  });
});

describe('connection', () => {
  test('the constructor neither connects nor throws when Redis is not there; the first operation rejects fast', async () => {
    const gone = await startRedis();
    const port = gone.port;
    await gone.stop();
    const { store, logged } = open({ port });
    assert.equal(store.client.isOpen, false, 'lazy: no connection before the first operation');
    const { err, ms } = await timedRejection(() => store.readAll());
    assert.ok(ms < 2500, `rejected after ${ms} ms`);
    assert.ok(err instanceof PromforkError);
    assert.equal(err.code, 'PROMFORK_ERR_REDIS_UNREACHABLE');
    assert.match(err.message, new RegExp(`^Redis at 127\\.0\\.0\\.1:${port} is unreachable \\(.*ECONNREFUSED.*\\); check REDIS_HOST and REDIS_PORT`));
    // Fails fast while the outage lasts, and warns once.
    const again = await timedRejection(() => store.writeSnapshot(snapshot(1, 0)));
    assert.ok(again.ms < 100, `second rejection after ${again.ms} ms`);
    assert.equal(logged.warnings.length, 1);
    assert.match(logged.warnings[0]!, new RegExp(`Redis at 127\\.0\\.0\\.1:${port} is unreachable`));
  });

  test('Redis killed: operations reject fast, naming host:port, never the password; back on the same port, the same store works', async () => {
    const server = await startRedis({ password: PASSWORD });
    const { store, logged } = open({ server, password: PASSWORD, prefix: freshPrefix() });
    await store.writeSnapshot(snapshot(131, 0, 1));
    assert.equal((await store.readSnapshot(131))!.seq, 1);

    await server.kill();
    const ops: [string, () => Promise<unknown>][] = [
      ['writeSnapshot', () => store.writeSnapshot(snapshot(131, 0, 2))],
      ['readSnapshot', () => store.readSnapshot(131)],
      ['readAll', () => store.readAll()],
      ['removeSnapshot', () => store.removeSnapshot(131)],
      ['writeRetired', () => store.writeRetired({})],
      ['readRetired', () => store.readRetired()],
      ['refresh', () => store.refresh([131])],
      ['clear', () => store.clear()],
    ];
    for (const [name, op] of ops) {
      const { err, ms } = await timedRejection(op);
      assert.ok(ms < 2500, `${name} rejected after ${ms} ms`);
      assert.match(err.message, new RegExp(`^Redis at 127\\.0\\.0\\.1:${server.port} is unreachable`), `${name}: ${err.message}`);
      assert.ok(!err.message.includes(PASSWORD), `${name}: the password leaked: ${err.message}`);
    }
    assert.equal(logged.warnings.length, 1, `one warning per outage: ${logged.warnings.join(' | ')}`);
    assert.ok(!logged.warnings[0]!.includes(PASSWORD));

    await server.restart();
    await eventually(() => store.writeSnapshot(snapshot(131, 0, 3)), 15_000);
    assert.equal((await store.readSnapshot(131))!.seq, 3);
    assert.ok(logged.infos.some((m) => /reachable again/.test(m)), `infos: ${logged.infos.join(' | ')}`);
    assert.ok(![...logged.warnings, ...logged.infos].some((m) => m.includes(PASSWORD)));

    // A second outage warns again, once.
    await server.kill();
    await assert.rejects(store.readAll(), /is unreachable/);
    await assert.rejects(store.readAll(), /is unreachable/);
    assert.equal(logged.warnings.length, 2);
    await server.restart();
    await eventually(() => store.readAll(), 15_000);
  });

  test('a wrong password: an error naming REDIS_PASSWORD, never the password', async () => {
    const server = await startRedis({ password: PASSWORD });
    const wrong = 'wr0ng-Passw0rd!';
    const { store, logged } = open({ server, password: wrong });
    const { err, ms } = await timedRejection(() => store.writeSnapshot(snapshot(141, 0)));
    assert.ok(ms < 2500, `rejected after ${ms} ms`);
    assert.ok(err instanceof PromforkError);
    assert.equal(err.code, 'PROMFORK_ERR_REDIS_AUTH');
    assert.match(err.message, new RegExp(`^Redis at 127\\.0\\.0\\.1:${server.port} refused the password \\(WRONGPASS.*\\); check REDIS_PASSWORD$`));
    await assert.rejects(store.readAll(), /check REDIS_PASSWORD/);
    for (const text of [err.message, ...logged.warnings, ...logged.infos]) {
      assert.ok(!text.includes(wrong) && !text.includes(PASSWORD), `leak: ${text}`);
    }
    assert.equal(logged.warnings.length, 1);

    // No password at all against a server that requires one.
    const none = open({ server }).store;
    await assert.rejects(none.readAll(), (e: Error) => {
      assert.match(e.message, /requires a password \(NOAUTH.*\); set REDIS_PASSWORD$/);
      return true;
    });

    // The password in REDIS_URL: the error names REDIS_URL and shows it masked.
    const viaUrl = open({ server, url: `redis://:${encodeURIComponent(wrong)}@127.0.0.1:${server.port}/0` }).store;
    await assert.rejects(viaUrl.readAll(), (e: Error) => {
      assert.match(e.message, /refused the password \(WRONGPASS.*\); check REDIS_URL \(redis:\/\/:\*\*\*\*@127\.0\.0\.1:\d+\/0\)$/);
      assert.ok(!e.message.includes(wrong) && !e.message.includes(encodeURIComponent(wrong)));
      return true;
    });

    // The right password, directly or in the URL, works.
    const right = open({ server, password: PASSWORD }).store;
    await right.writeSnapshot(snapshot(142, 0));
    assert.equal((await right.readSnapshot(142))!.pid, 142);
    const rightUrl = open({ server, url: `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${server.port}`, prefix: right.prefix }).store;
    assert.equal((await rightUrl.readSnapshot(142))!.pid, 142);
  });

  test('url wins over host and port; db selects the database', async () => {
    const prefix = freshPrefix();
    const viaUrl = open({ prefix, host: 'unused.invalid', port: 1, url: `${redis.url}/3` }).store;
    await viaUrl.writeSnapshot(snapshot(151, 0));
    const db3 = open({ prefix, db: 3 }).store;
    assert.equal((await db3.readSnapshot(151))!.pid, 151);
    const db0 = open({ prefix }).store;
    assert.equal(await db0.readSnapshot(151), null);
    await viaUrl.clear();
  });

  test('close() waits for pending writes; later operations reject', async () => {
    const { store } = open();
    const writes = Array.from({ length: 10 }, (_, i) => store.writeSnapshot(snapshot(161, 0, i + 1)));
    await store.close();
    await Promise.all(writes);
    await assert.rejects(store.writeSnapshot(snapshot(161, 0, 99)), /the Redis store is closed/);
    await assert.rejects(store.readAll(), /the Redis store is closed/);
    assert.equal(store.client.isOpen, false);
    const reader = open({ prefix: store.prefix }).store;
    assert.equal((await reader.readSnapshot(161))!.seq, 10);
  });
});

describe('configuration and messages', () => {
  test('describeRedisTarget masks the password', () => {
    assert.equal(describeRedisTarget({ host: 'redis.local', port: 6380, db: 2, password: 's3cret' }), 'redis://:****@redis.local:6380/2');
    assert.equal(describeRedisTarget({ host: 'redis.local', port: 6379, db: 0 }), 'redis://redis.local:6379');
    assert.equal(describeRedisTarget({ host: '::1', port: 6379, db: 0, password: null }), 'redis://[::1]:6379');
    assert.equal(
      describeRedisTarget({ url: 'rediss://app:s3cret@cache.example:6390/1', host: 'x', port: 1, db: 0, password: 'other' }),
      'rediss://app:****@cache.example:6390/1',
    );
    assert.equal(describeRedisTarget({ url: 'redis://:s3cret@cache.example', host: 'x', port: 1, db: 0 }), 'redis://:****@cache.example');
    assert.equal(describeRedisTarget({ url: 'redis://us:s3cret@bad host:x', host: 'x', port: 1, db: 0 }), 'redis://us:****@bad host:x');
  });

  test('a bad REDIS_URL is a configuration error that does not show the password', () => {
    const base = { host: 'x', port: 6379, db: 0, prefix: 'p', instance: 'i', ppid: PPID, log: logger().log };
    for (const url of ['http://:s3cret@h:1', 'redis://:s3cret@bad host:1', 'redis://:s3cret@h:1/notadb']) {
      assert.throws(
        () => new RedisStore({ ...base, url }),
        (err: unknown) => {
          assert.ok(err instanceof PromforkError);
          assert.equal(err.code, 'PROMFORK_ERR_REDIS_CONFIG');
          assert.match(err.message, /^REDIS_URL /);
          assert.ok(!err.message.includes('s3cret'), err.message);
          return true;
        },
      );
    }
    assert.throws(() => new RedisStore({ ...base, instance: 'a:b' }), /invalid instance name "a:b" \(--metrics-instance, PROMFORK_INSTANCE\)/);
    assert.throws(() => new RedisStore({ ...base, port: 0 }), /REDIS_PORT must be a port number/);
    assert.throws(() => new RedisStore({ ...base, ppid: 0 }), /ppid must be a positive integer/);
  });
});
