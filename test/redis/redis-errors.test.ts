// Redis misconfigured, with a real redis-server: a wrong password (REDIS_PASSWORD or in REDIS_URL) and an unreachable
// address each give one clear line naming the setting to fix; the password never appears in any output (log lines
// at debug level, /metrics); the app keeps serving.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { APP, request, startServer, type Started } from '../helpers/server.js';
import { scrape, sum } from '../helpers/metrics.js';
import { startRedis } from '../helpers/redis.js';
// A loopback port where nothing listens: free a moment ago, and nothing in this test binds it.
import { freePort as closedPort } from '../helpers/ports.js';

const RIGHT = 'R1ght-pa55-9e2b4a';
const WRONG = 'Wr0ng-pa55-7f3c1d';

/** The first WARNING or ERROR line that names `address`. */
async function problemLine(started: Started, address: string): Promise<string> {
  const esc = address.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = await started.server.waitFor(new RegExp(`^.*\\[(WARNING|ERROR)\\].*${esc}.*$`, 'm'));
  return m[0];
}

async function servesAndReportsDown(started: Started): Promise<string> {
  for (let i = 0; i < 5; i++) assert.equal((await request(`${started.url}/`)).status, 200);
  assert.equal((await request(`${started.url}/throw`)).status, 500);
  const s = await scrape(started.metricsUrl);
  assert.ok(s.ms < 1000, `scrape took ${s.ms} ms`);
  assert.equal(s.samples.get('promfork_store_up{store="redis"}'), 0, s.text);
  assert.equal(sum(s, 'gunicorn_worker_requests_total'), 0, 'nothing persisted, nothing exposed');
  return s.text;
}

function assertNoSecret(where: string, text: string): void {
  for (const secret of [RIGHT, WRONG, encodeURIComponent(WRONG), encodeURIComponent(RIGHT)]) {
    assert.ok(!text.includes(secret), `${where} contains a password`);
  }
}

test('a wrong password or an unreachable address: one clear line naming the setting, no password shown, the app serves', async () => {
  const redis = await startRedis({ password: RIGHT });
  const closed = await closedPort();
  const base = { REDIS_ENABLED: 'true' };
  const [byPassword, byUrl, unreachable] = await Promise.all([
    startServer([APP, '-w', '2'], {
      env: { ...base, REDIS_HOST: '127.0.0.1', REDIS_PORT: String(redis.port), REDIS_PASSWORD: WRONG },
    }),
    startServer([APP], { env: { ...base, REDIS_URL: `redis://:${WRONG}@127.0.0.1:${redis.port}/0` } }),
    startServer([APP], { env: { ...base, REDIS_HOST: '127.0.0.1', REDIS_PORT: String(closed) } }),
  ]);

  const pwLine = await problemLine(byPassword, `127.0.0.1:${redis.port}`);
  assert.match(pwLine, /REDIS_PASSWORD/);
  assert.match(pwLine, /password/i);

  const urlLine = await problemLine(byUrl, `127.0.0.1:${redis.port}`);
  assert.match(urlLine, /REDIS_URL/);

  const hostLine = await problemLine(unreachable, `127.0.0.1:${closed}`);
  assert.match(hostLine, /REDIS_HOST/);
  assert.match(hostLine, /REDIS_PORT/);

  const bodies = await Promise.all([byPassword, byUrl, unreachable].map(servesAndReportsDown));
  bodies.forEach((body, i) => assertNoSecret(`/metrics of server ${i}`, body));

  // Exits cleanly; nothing it printed, from the start (at debug level) to the exit, shows a password.
  for (const started of [byPassword, byUrl, unreachable]) {
    await started.server.stop();
    assert.equal(started.server.proc.exitCode, 0, started.server.output);
    assertNoSecret(`the output of pid ${started.server.pid}`, started.server.output);
  }
  // Neither server wrote anything: Redis refused them.
  assert.equal(await redis.cli('DBSIZE'), '0');
});
