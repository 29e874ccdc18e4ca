// The metrics port has its own connection limit: a flood of idle connections is closed beyond it at once, the ones
// it keeps are closed by the headers timeout, and the app port serves all along.

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { APP, request, startServer } from '../helpers/server.js';
import { until } from '../helpers/poll.js';
import { METRICS_MAX_CONNECTIONS } from '../../src/exporter/metrics-server.js';

test('idle connections to the metrics port beyond its limit are closed at once; the app serves on', { timeout: 60_000 }, async () => {
  const { url, metricsUrl } = await startServer([APP, '-w', '1']);
  const port = Number(new URL(metricsUrl).port);
  const flood = 200;
  const closed: boolean[] = Array(flood).fill(false);
  const sockets = await Promise.all(
    Array.from({ length: flood }, (_, i) =>
      new Promise<net.Socket>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
        s.on('error', () => undefined);
        s.resume(); // read, so that the server's close (or its 408) is seen
        s.on('close', () => (closed[i] = true));
      }),
    ),
  );
  try {
    // Everything over the limit is closed promptly; the app port answers meanwhile.
    await until('the connections over the limit are closed', () => (closed.filter(Boolean).length >= flood - METRICS_MAX_CONNECTIONS ? true : undefined), 3000);
    assert.equal((await request(`${url}/`)).status, 200);
    // The idle ones it kept are closed by the headers timeout (408), and a scrape is answered again.
    await until('every idle connection is closed', () => (closed.every(Boolean) ? true : undefined), 30_000);
    assert.equal((await request(metricsUrl)).status, 200);
  } finally {
    for (const s of sockets) s.destroy();
  }
});
