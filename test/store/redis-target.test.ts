// Where Redis is (src/store/redis-connection.ts): the URL forms and the settings of one server, Redis Sentinel and
// Redis Cluster, read into a target; every mistake is one PROMFORK_ERR_REDIS_CONFIG line naming the setting, and no
// password is ever part of a message or of the target as logged. Pure logic: no Redis needed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PromforkError } from '../../src/errors.js';
import { describeRedisTarget, resolveRedisTarget, type RedisTarget } from '../../src/store/redis-connection.js';

const BASE: RedisTarget = { host: 'localhost', port: 6379, db: 0 };
const SECRET = 'S3cr3t/pa55@x';
const ENC = encodeURIComponent(SECRET);

function resolved(t: Partial<RedisTarget>) {
  const r = resolveRedisTarget({ ...BASE, ...t });
  return { mode: r.mode, nodes: r.nodes, masterName: r.masterName, db: r.db, tls: r.tls, username: r.username, password: r.password, address: r.address };
}

function configError(t: Partial<RedisTarget>, pattern: RegExp): void {
  assert.throws(
    () => resolveRedisTarget({ ...BASE, ...t }),
    (err: unknown) => {
      assert.ok(err instanceof PromforkError, String(err));
      assert.equal(err.code, 'PROMFORK_ERR_REDIS_CONFIG');
      assert.match(err.message, pattern);
      for (const s of [SECRET, ENC, 'hunter2']) assert.ok(!err.message.includes(s), `the message shows a password: ${err.message}`);
      return true;
    },
  );
}

describe('URL forms', () => {
  test('redis:// and rediss://: one server, database, user and password (percent-decoded)', () => {
    assert.deepEqual(resolved({ url: `rediss://app:${ENC}@cache.internal:6380/3` }), {
      mode: 'standalone', nodes: [{ host: 'cache.internal', port: 6380 }], masterName: null, db: 3, tls: true,
      username: 'app', password: SECRET, address: 'cache.internal:6380',
    });
    assert.deepEqual(resolved({ url: 'redis://[::1]' }).nodes, [{ host: '::1', port: 6379 }]);
    assert.equal(resolved({ url: 'redis://[::1]' }).address, '[::1]:6379');
    // REDIS_PASSWORD applies when the URL has none; the URL's wins otherwise.
    assert.equal(resolved({ url: 'redis://h', password: 'hunter2' }).password, 'hunter2');
    assert.equal(resolved({ url: `redis://:${ENC}@h`, password: 'hunter2' }).password, SECRET);
  });

  test('redis+sentinel://: the sentinels (26379 by default), the master name, the database; rediss+sentinel:// is TLS', () => {
    assert.deepEqual(resolved({ url: `redis+sentinel://:${ENC}@s1,s2:26380,[fd00::1]:26381/mymaster/2` }), {
      mode: 'sentinel',
      nodes: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }, { host: 'fd00::1', port: 26381 }],
      masterName: 'mymaster', db: 2, tls: false, username: null, password: SECRET,
      address: 'sentinel master mymaster at s1:26379,s2:26380,[fd00::1]:26381',
    });
    assert.equal(resolved({ url: 'rediss+sentinel://s1/m' }).tls, true);
    assert.equal(resolved({ url: 'rediss+sentinel://s1/m' }).db, 0);
  });

  test('redis+cluster://: seed nodes (6379 by default); rediss+cluster:// is TLS', () => {
    assert.deepEqual(resolved({ url: 'rediss+cluster://u:pw@n1:7000,n2,n3:7002' }), {
      mode: 'cluster', nodes: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 6379 }, { host: 'n3', port: 7002 }],
      masterName: null, db: 0, tls: true, username: 'u', password: 'pw', address: 'cluster n1:7000,n2:6379,n3:7002',
    });
    assert.equal(resolved({ url: 'redis+cluster://n1/0' }).db, 0);
  });

  test('mistakes are one line naming REDIS_URL and the form expected, never the password', () => {
    configError({ url: `http://:${ENC}@h:1` }, /^REDIS_URL http:\/\/:\*\*\*\*@h:1 is not a Redis URL \(expected redis:\/\//);
    configError({ url: `redis://:${ENC}@bad host:1` }, /^REDIS_URL .*"bad host:1" is not host\[:port\]/);
    configError({ url: `redis://:${ENC}@h:1/notadb` }, /^REDIS_URL .*the path must be a database number/);
    configError({ url: `redis://:${ENC}@h1,h2` }, /lists several hosts: use redis\+sentinel:\/\/\.\.\.\/MASTER .* or redis\+cluster:\/\//);
    configError({ url: `redis+sentinel://:${ENC}@s1,s2` }, /a sentinel URL names the master: redis\+sentinel:\/\/host\[:port\]/);
    configError({ url: 'redis+sentinel://s1/m/x' }, /the database must be a number/);
    configError({ url: `redis+cluster://:${ENC}@n1/3` }, /a Redis Cluster has only database 0/);
    configError({ url: 'redis+cluster://n1:99999' }, /port 99999 of "n1:99999" is not 1-65535/);
    configError({ url: 'redis+cluster://n1,,n2' }, /empty host in the list/);
    configError({ url: `redis://:${ENC}@h?ssl=true` }, /no \?query or #fragment is read/);
    configError({ url: 'redis://h', sentinelMaster: 'm' }, /REDIS_SENTINEL_MASTER goes with REDIS_HOST; with REDIS_URL, name the master in the URL/);
    configError({ url: 'redis://h', cluster: true }, /REDIS_CLUSTER goes with REDIS_HOST; with REDIS_URL, use redis\+cluster:\/\//);
  });
});

describe('settings forms', () => {
  test('REDIS_HOST and REDIS_PORT: one server', () => {
    assert.deepEqual(resolved({ host: '10.0.0.5', port: 6400, db: 1, password: 'hunter2' }), {
      mode: 'standalone', nodes: [{ host: '10.0.0.5', port: 6400 }], masterName: null, db: 1, tls: false,
      username: null, password: 'hunter2', address: '10.0.0.5:6400',
    });
  });

  test('REDIS_SENTINEL_MASTER: REDIS_HOST lists the sentinels, 26379 by default', () => {
    const r = resolveRedisTarget({ ...BASE, host: 's1,s2:26390', sentinelMaster: 'main', sentinelPassword: 'hunter2', db: 4 });
    assert.equal(r.mode, 'sentinel');
    assert.deepEqual(r.nodes, [{ host: 's1', port: 26379 }, { host: 's2', port: 26390 }]);
    assert.equal(r.masterName, 'main');
    assert.equal(r.db, 4);
    assert.equal(r.sentinelPassword, 'hunter2');
    assert.equal(r.addressSetting, 'REDIS_HOST and REDIS_SENTINEL_MASTER');
  });

  test('REDIS_CLUSTER: REDIS_HOST lists seed nodes, REDIS_PORT for those without a port', () => {
    const r = resolveRedisTarget({ ...BASE, host: 'n1,n2:7001', port: 7000, cluster: true });
    assert.equal(r.mode, 'cluster');
    assert.deepEqual(r.nodes, [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }]);
  });

  test('mistakes name the setting', () => {
    configError({ host: 'a,b' }, /^REDIS_HOST lists several hosts \(a,b\): set REDIS_SENTINEL_MASTER for sentinels or REDIS_CLUSTER=true/);
    configError({ host: 'n1', cluster: true, db: 2 }, /^REDIS_DB must be 0 with REDIS_CLUSTER/);
    configError({ host: 'n1', cluster: true, sentinelMaster: 'm' }, /REDIS_SENTINEL_MASTER and REDIS_CLUSTER exclude each other/);
    configError({ host: 's1,', sentinelMaster: 'm' }, /^REDIS_HOST \(the sentinels\): empty host/);
    configError({ port: 0 }, /^REDIS_PORT must be a port number/);
  });
});

test('no password in the target as logged, nor in the secrets list missing any form of it', () => {
  const forms: RedisTarget[] = [
    { ...BASE, url: `redis+sentinel://app:${ENC}@s1/m`, sentinelPassword: 'hunter2' },
    { ...BASE, url: `rediss+cluster://:${ENC}@n1,n2` },
    { ...BASE, host: 's1,s2', sentinelMaster: 'm', password: SECRET, sentinelPassword: 'hunter2' },
    { ...BASE, host: 'n1,n2', cluster: true, password: SECRET },
  ];
  const shown = forms.map(describeRedisTarget);
  assert.deepEqual(shown, [
    'redis+sentinel://app:****@s1/m',
    'rediss+cluster://:****@n1,n2',
    'redis+sentinel://:****@s1,s2/m',
    'redis+cluster://:****@n1,n2',
  ]);
  for (const t of forms) {
    const r = resolveRedisTarget(t);
    const secrets = new Set(r.secrets);
    for (const s of [SECRET, ...(t.url ? [ENC] : []), ...(t.sentinelPassword ? ['hunter2'] : [])]) assert.ok(secrets.has(s), `${s} is not masked`);
    assert.ok(!r.address.includes(SECRET) && !r.address.includes('hunter2'));
  }
});
