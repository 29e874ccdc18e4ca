// The metrics HTTP(S) server on real loopback sockets: routes, negotiation, gzip, errors from the source,
// real TLS with client certificates (generated with the openssl CLI into a temp dir), auth, and listen retries.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { gunzipSync } from 'node:zlib';
import {
  MetricsServer,
  type ExpositionFormat,
  type MetricsServerOptions,
  type MetricsSource,
} from '../../src/exporter/metrics-server.js';
import { PromforkError } from '../../src/errors.js';
import { needTool, optedOut, requireTool, SKIP_ENV } from '../helpers/tools.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'promfork-metrics-server-'));
const servers: MetricsServer[] = [];

after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------------------ helpers

const PROM_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const OM_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';
/** What Prometheus 2.x/3.x sends. */
const PROMETHEUS_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,' +
  'text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

/** Our own MetricsSource interface, implemented for the test: no network is mocked. */
class StubSource implements MetricsSource {
  calls: ExpositionFormat[] = [];
  body = 'up 1\n';
  failWith: Error | null = null;
  throwSync = false;
  hang = false;

  collect(format: ExpositionFormat): Promise<{ body: string; contentType: string }> {
    this.calls.push(format);
    if (this.throwSync && this.failWith) throw this.failWith;
    if (this.hang) return new Promise(() => {});
    if (this.failWith) return Promise.reject(this.failWith);
    return Promise.resolve(
      format === 'openmetrics'
        ? { body: `${this.body}# EOF\n`, contentType: OM_TYPE }
        : { body: this.body, contentType: PROM_TYPE },
    );
  }
}

class TestLog {
  infos: string[] = [];
  warnings: string[] = [];
  errors: string[] = [];
  info(m: string) {
    this.infos.push(m);
  }
  warning(m: string) {
    this.warnings.push(m);
  }
  error(m: string, e?: unknown) {
    this.errors.push(e === undefined ? m : `${m} ${String(e)}`);
  }
  all(): string {
    return [...this.infos, ...this.warnings, ...this.errors].join('\n');
  }
}

interface Started {
  server: MetricsServer;
  source: StubSource;
  log: TestLog;
  port: number;
  url: string;
}

async function startServer(opts: Partial<MetricsServerOptions> = {}): Promise<Started> {
  const source = (opts.source as StubSource | undefined) ?? new StubSource();
  const log = (opts.log as TestLog | undefined) ?? new TestLog();
  const server = new MetricsServer({ bind: '127.0.0.1', port: 0, ...opts, source, log });
  servers.push(server);
  const { url, port } = await server.start();
  return { server, source, log, port, url };
}

interface TlsClient {
  ca?: string;
  cert?: string;
  key?: string;
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(
  port: number,
  opts: { path?: string; method?: string; headers?: http.OutgoingHttpHeaders; tls?: TlsClient; host?: string } = {},
): Promise<Reply> {
  const base = {
    host: opts.host ?? '127.0.0.1',
    port,
    path: opts.path ?? '/metrics',
    method: opts.method ?? 'GET',
    headers: opts.headers ?? {},
    agent: false as const,
  };
  return new Promise((resolve, reject) => {
    const onResponse = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    };
    const req = opts.tls ? https.request({ ...base, ...opts.tls }, onResponse) : http.request(base, onResponse);
    req.on('error', reject);
    req.end();
  });
}

const text = (r: Reply) => r.body.toString('utf8');

// ------------------------------------------------------------------------------------------------ certificates

const pki = {
  dir: path.join(tmp, 'pki'),
  file: (name: string) => path.join(tmp, 'pki', name),
  read: (name: string) => fs.readFileSync(path.join(tmp, 'pki', name), 'utf8'),
};

let serial = 1000;
/** The TLS tests are skipped only on request (PROMFORK_TEST_SKIP=openssl); a missing openssl fails them. */
const NO_TLS = optedOut().has('openssl') ? `opted out: ${SKIP_ENV}=openssl` : false;
function openssl(...args: string[]): void {
  execFileSync(requireTool('openssl'), args, { cwd: pki.dir, stdio: ['ignore', 'ignore', 'pipe'] });
}
function makeCa(name: string): void {
  openssl(
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  );
}
function makeLeaf(name: string, ca: string, ext: string): void {
  fs.writeFileSync(pki.file(`${name}.ext`), ext);
  openssl(
    'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`,
  );
  openssl(
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial', String(++serial),
    '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`,
  );
}

before(() => {
  if (NO_TLS) return;
  fs.mkdirSync(pki.dir);
  makeCa('ca');
  makeCa('rogue-ca');
  makeLeaf('server', 'ca', 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  makeLeaf('client', 'ca', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  makeLeaf('rogue-client', 'rogue-ca', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
});

interface Probe {
  /** The client saw its side of the handshake complete ('secureConnect'). */
  secure: boolean;
  /** The error the client got, if any. */
  code: string | null;
  /** Bytes the server sent after the handshake (none when refused). */
  received: number;
  /** The server did not close the connection within the guard time. */
  timedOut: boolean;
}

/**
 * Opens a raw TLS connection, writes nothing, and waits for the server to close it. Writing nothing keeps the
 * outcome deterministic: the server's alert is read before any reset.
 */
function tlsProbe(port: number, client: TlsClient, guardMs = 3000): Promise<Probe> {
  return new Promise((resolve) => {
    const probe: Probe = { secure: false, code: null, received: 0, timedOut: false };
    const sock = tls.connect({ host: '127.0.0.1', port, ...client });
    const guard = setTimeout(() => {
      probe.timedOut = true;
      sock.destroy();
    }, guardMs);
    sock.on('secureConnect', () => (probe.secure = true));
    sock.on('data', (d: Buffer) => (probe.received += d.length));
    sock.on('error', (err: NodeJS.ErrnoException) => (probe.code ??= err.code ?? err.message));
    sock.on('close', () => {
      clearTimeout(guard);
      resolve(probe);
    });
  });
}

const errorCode = (promise: Promise<unknown>): Promise<string> =>
  promise.then(
    () => 'no error',
    (err: NodeJS.ErrnoException) => String(err.code),
  );

// ------------------------------------------------------------------------------------------------ tests

describe('MetricsServer over HTTP', () => {
  let s: Started;
  before(async () => {
    s = await startServer();
  });

  test('start() reports the /metrics URL and the real port; listening is true', () => {
    assert.ok(s.port > 0);
    assert.equal(s.url, `http://127.0.0.1:${s.port}/metrics`);
    assert.equal(s.server.listening, true);
    assert.match(s.log.infos.join('\n'), new RegExp(`http://127\\.0\\.0\\.1:${s.port}/metrics`));
  });

  test('GET /metrics without Accept serves the Prometheus text format, Content-Type from the source', async () => {
    s.source.calls = [];
    const r = await request(s.port);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], PROM_TYPE);
    assert.equal(text(r), 'up 1\n');
    assert.deepEqual(s.source.calls, ['prometheus']);
  });

  test('Prometheus\' own Accept header gets OpenMetrics', async () => {
    s.source.calls = [];
    const r = await request(s.port, { headers: { accept: PROMETHEUS_ACCEPT } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], OM_TYPE);
    assert.equal(text(r), 'up 1\n# EOF\n');
    assert.deepEqual(s.source.calls, ['openmetrics']);
  });

  test('text/plain preferred over OpenMetrics by q gets the Prometheus format', async () => {
    s.source.calls = [];
    await request(s.port, { headers: { accept: 'application/openmetrics-text;q=0.3, text/plain;q=0.9' } });
    await request(s.port, { headers: { accept: 'text/plain;version=0.0.4' } });
    await request(s.port, { headers: { accept: 'application/openmetrics-text;q=0' } });
    assert.deepEqual(s.source.calls, ['prometheus', 'prometheus', 'prometheus']);
  });

  test('gzip when accepted and the body is over 1 KiB; identity otherwise', async () => {
    const big = Array.from({ length: 200 }, (_, i) => `metric_${i} ${i}\n`).join('');
    assert.ok(Buffer.byteLength(big) > 1024);
    s.source.body = big;
    try {
      const gz = await request(s.port, { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(gz.status, 200);
      assert.equal(gz.headers['content-encoding'], 'gzip');
      assert.match(String(gz.headers.vary), /Accept-Encoding/);
      assert.equal(Number(gz.headers['content-length']), gz.body.length);
      assert.ok(gz.body.length < Buffer.byteLength(big));
      assert.equal(gunzipSync(gz.body).toString('utf8'), big);

      const plain = await request(s.port);
      assert.equal(plain.headers['content-encoding'], undefined);
      assert.equal(text(plain), big);

      const refused = await request(s.port, { headers: { 'accept-encoding': 'gzip;q=0, deflate' } });
      assert.equal(refused.headers['content-encoding'], undefined);
      assert.equal(text(refused), big);
    } finally {
      s.source.body = 'up 1\n';
    }
    const small = await request(s.port, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(small.headers['content-encoding'], undefined);
    assert.equal(text(small), 'up 1\n');
  });

  test('HEAD /metrics: the headers of GET, no body', async () => {
    const r = await request(s.port, { method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], PROM_TYPE);
    assert.equal(r.headers['content-length'], String(Buffer.byteLength('up 1\n')));
    assert.equal(r.body.length, 0);
  });

  test('GET / links /metrics; /healthz is ok; anything else 404', async () => {
    const index = await request(s.port, { path: '/' });
    assert.equal(index.status, 200);
    assert.match(String(index.headers['content-type']), /^text\/html/);
    assert.match(text(index), /<a href="\/metrics">/);

    const health = await request(s.port, { path: '/healthz' });
    assert.equal(health.status, 200);
    assert.equal(text(health), 'ok');

    for (const p of ['/nope', '/metrics/extra', '/metricsx']) {
      const r = await request(s.port, { path: p });
      assert.equal(r.status, 404, p);
    }
    const withQuery = await request(s.port, { path: '/metrics?name[]=up' });
    assert.equal(withQuery.status, 200);
  });

  test('methods other than GET and HEAD get 405 with Allow', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      for (const p of ['/metrics', '/healthz', '/']) {
        const r = await request(s.port, { method, path: p });
        assert.equal(r.status, 405, `${method} ${p}`);
        assert.equal(r.headers.allow, 'GET, HEAD');
      }
    }
  });

  test('a source that rejects or throws gives 500 with a one-line body, is logged, and the server goes on', async () => {
    s.log.errors = [];
    s.source.failWith = new Error('store unreadable\nsecond line');
    try {
      const rejected = await request(s.port);
      assert.equal(rejected.status, 500);
      assert.equal(text(rejected).trimEnd().split('\n').length, 1);
      s.source.throwSync = true;
      const thrown = await request(s.port);
      assert.equal(thrown.status, 500);
    } finally {
      s.source.failWith = null;
      s.source.throwSync = false;
    }
    assert.equal(s.log.errors.length, 2);
    assert.match(s.log.errors[0]!, /store unreadable/);
    const ok = await request(s.port);
    assert.equal(ok.status, 200);
    assert.equal(s.server.listening, true);
  });

  test('keep-alive: several requests share one connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const sockets = new Set<unknown>();
      for (let i = 0; i < 3; i++) {
        await new Promise<void>((resolve, reject) => {
          const req = http.get({ host: '127.0.0.1', port: s.port, path: '/metrics', agent }, (res) => {
            sockets.add(res.socket);
            res.resume();
            res.on('end', resolve);
          });
          req.on('error', reject);
        });
      }
      assert.equal(sockets.size, 1);
    } finally {
      agent.destroy();
    }
  });
});

describe('MetricsServer: a source that never answers', () => {
  test('gets 503 after collectTimeoutMs, logged; the server still answers', async () => {
    const s = await startServer({ collectTimeoutMs: 100 });
    s.source.hang = true;
    const r = await request(s.port);
    assert.equal(r.status, 503);
    assert.match(s.log.errors.join('\n'), /did not answer within 100 ms/);
    s.source.hang = false;
    assert.equal((await request(s.port)).status, 200);
    assert.equal((await request(s.port, { path: '/healthz' })).status, 200);
    await s.server.close();
  });
});

describe('MetricsServer: a client that never finishes its request', () => {
  test('is answered 408 and disconnected after the request timeout (plain and TLS)', async (t) => {
    const slow = (sock: net.Socket | tls.TLSSocket) =>
      new Promise<{ reply: string; ms: number }>((resolve, reject) => {
        const t0 = performance.now();
        let reply = '';
        sock.on('data', (d: Buffer) => (reply += d.toString('latin1')));
        sock.on('error', reject);
        sock.on('close', () => resolve({ reply, ms: performance.now() - t0 }));
        sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'); // no blank line: the headers never end
      });
    const plain = await startServer({ requestTimeoutMs: 200 });
    const a = await slow(net.connect(plain.port, '127.0.0.1'));
    assert.match(a.reply, /^HTTP\/1\.1 408 /);
    assert.ok(a.ms < 2000, `closed after ${a.ms} ms`);
    assert.deepEqual(plain.source.calls, []);
    await plain.server.close();

    if (NO_TLS) return t.skip(`the TLS half: ${NO_TLS}`);
    const secure = await startServer({
      requestTimeoutMs: 200,
      certfile: pki.file('server.crt'),
      keyfile: pki.file('server.key'),
    });
    const sock = tls.connect({ host: '127.0.0.1', port: secure.port, ca: pki.read('ca.crt') });
    await new Promise((resolve) => sock.once('secureConnect', resolve));
    const b = await slow(sock);
    assert.match(b.reply, /^HTTP\/1\.1 408 /);
    assert.ok(b.ms < 2000, `closed after ${b.ms} ms`);
    await secure.server.close();
  });
});

describe('MetricsServer over TLS', { skip: NO_TLS }, () => {
  test('certfile + keyfile: serves HTTPS', async () => {
    const s = await startServer({ certfile: pki.file('server.crt'), keyfile: pki.file('server.key') });
    assert.equal(s.url, `https://127.0.0.1:${s.port}/metrics`);
    const r = await request(s.port, { tls: { ca: pki.read('ca.crt') } });
    assert.equal(r.status, 200);
    assert.equal(text(r), 'up 1\n');
    // Plain HTTP on the TLS port gets no metrics.
    const plain = await request(s.port).then(
      (reply) => reply.status,
      () => 'refused',
    );
    assert.notEqual(plain, 200);
    await s.server.close();
  });

  describe('with --metrics-ca-certs: client certificates required and verified', () => {
    let s: Started;
    before(async () => {
      s = await startServer({
        certfile: pki.file('server.crt'),
        keyfile: pki.file('server.key'),
        caCerts: pki.file('ca.crt'),
      });
    });
    after(() => s.server.close());

    test('a client signed by the CA gets 200', async () => {
      const r = await request(s.port, {
        tls: { ca: pki.read('ca.crt'), cert: pki.read('client.crt'), key: pki.read('client.key') },
      });
      assert.equal(r.status, 200);
      assert.equal(text(r), 'up 1\n');
    });

    test('no client certificate: refused at the handshake by an alert (TLS 1.3 and 1.2)', async () => {
      s.source.calls = [];
      const ca = pki.read('ca.crt');
      const v13 = await tlsProbe(s.port, { ca });
      assert.equal(v13.code, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
      assert.equal(v13.received, 0);
      assert.equal(v13.timedOut, false);
      const v12 = await tlsProbe(s.port, { ca, maxVersion: 'TLSv1.2' });
      assert.equal(v12.secure, false, 'TLS 1.2: the client never completes the handshake');
      // The handshake_failure alert, by OpenSSL's name: "sslv3 alert" in OpenSSL 3.0 (Node 20), "ssl/tls alert"
      // in OpenSSL 3.5 (Node 22, 24, 26).
      assert.equal(v12.code, process.versions.openssl.startsWith('3.0.') ? 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' : 'ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE');
      // An HTTPS request gets no response, not even from /healthz, and the source is never asked.
      assert.notEqual(await errorCode(request(s.port, { tls: { ca } })), 'no error');
      assert.notEqual(await errorCode(request(s.port, { path: '/healthz', tls: { ca } })), 'no error');
      assert.deepEqual(s.source.calls, []);
    });

    test('a certificate from another CA: the connection is dropped at the handshake, no HTTP byte served', async () => {
      s.source.calls = [];
      const rogue = { ca: pki.read('ca.crt'), cert: pki.read('rogue-client.crt'), key: pki.read('rogue-client.key') };
      // TLS 1.2: the server drops the connection before its Finished; the client's handshake fails.
      const v12 = await tlsProbe(s.port, { ...rogue, maxVersion: 'TLSv1.2' });
      assert.equal(v12.secure, false);
      assert.equal(v12.code, 'ECONNRESET');
      // TLS 1.3 verifies the client after the server's Finished: the server closes at once, sending nothing.
      const v13 = await tlsProbe(s.port, rogue);
      assert.equal(v13.timedOut, false, 'the server closed the connection');
      assert.equal(v13.received, 0);
      assert.equal(await errorCode(request(s.port, { tls: rogue })), 'ECONNRESET');
      assert.equal(await errorCode(request(s.port, { path: '/healthz', tls: rogue })), 'ECONNRESET');
      assert.deepEqual(s.source.calls, []);
      // The same probe with the good certificate stays open: the difference is the certificate.
      const good = await tlsProbe(
        s.port,
        { ca: pki.read('ca.crt'), cert: pki.read('client.crt'), key: pki.read('client.key') },
        200,
      );
      assert.equal(good.secure, true);
      assert.equal(good.code, null);
      assert.equal(good.timedOut, true);
    });

    test('the server still serves good clients after refusing others', async () => {
      const r = await request(s.port, {
        tls: { ca: pki.read('ca.crt'), cert: pki.read('client.crt'), key: pki.read('client.key') },
      });
      assert.equal(r.status, 200);
    });
  });

  // The Python Gunicorn Prometheus Exporter's `client_capath`: a directory of CA certificates (OpenSSL's
  // hashed links or plain files), alone or with --metrics-ca-certs.
  describe('with --metrics-ca-path: the CA certificates of a directory', () => {
    test('a client signed by a CA in the directory gets 200; none, or one from another CA, is refused', async () => {
      const dir = path.join(tmp, 'capath');
      fs.mkdirSync(dir);
      fs.copyFileSync(pki.file('ca.crt'), path.join(dir, '1a2b3c4d.0'));
      fs.writeFileSync(path.join(dir, 'README'), 'not a certificate\n');
      fs.symlinkSync(path.join(dir, 'gone.pem'), path.join(dir, 'dangling.pem'));
      const s = await startServer({ certfile: pki.file('server.crt'), keyfile: pki.file('server.key'), caPath: dir });
      const ca = pki.read('ca.crt');
      const good = await request(s.port, { tls: { ca, cert: pki.read('client.crt'), key: pki.read('client.key') } });
      assert.equal(good.status, 200);
      assert.equal(text(good), 'up 1\n');
      assert.equal((await tlsProbe(s.port, { ca })).code, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
      const rogue = { ca, cert: pki.read('rogue-client.crt'), key: pki.read('rogue-client.key') };
      assert.equal(await errorCode(request(s.port, { tls: rogue })), 'ECONNRESET');
      await s.server.close();
    });

    test('with --metrics-ca-certs too, clients of either CA are accepted', async () => {
      const dir = path.join(tmp, 'capath-rogue');
      fs.mkdirSync(dir);
      fs.copyFileSync(pki.file('rogue-ca.crt'), path.join(dir, 'rogue.pem'));
      const s = await startServer({
        certfile: pki.file('server.crt'), keyfile: pki.file('server.key'), caCerts: pki.file('ca.crt'), caPath: dir,
      });
      const ca = pki.read('ca.crt');
      for (const who of ['client', 'rogue-client']) {
        const r = await request(s.port, { tls: { ca, cert: pki.read(`${who}.crt`), key: pki.read(`${who}.key`) } });
        assert.equal(r.status, 200, who);
      }
      await s.server.close();
    });
  });

  describe('bad TLS settings: start() throws a PromforkError naming the option and the file', () => {
    const expectTlsError = async (opts: Partial<MetricsServerOptions>, ...parts: (string | RegExp)[]) => {
      const server = new MetricsServer({
        bind: '127.0.0.1',
        port: 0,
        source: new StubSource(),
        log: new TestLog(),
        ...opts,
      });
      servers.push(server);
      await assert.rejects(server.start(), (err: unknown) => {
        assert.ok(err instanceof PromforkError, String(err));
        assert.equal(err.code, 'PROMFORK_ERR_TLS');
        for (const part of parts) {
          if (typeof part === 'string') assert.ok(err.message.includes(part), `${err.message} names ${part}`);
          else assert.match(err.message, part);
        }
        assert.equal(err.message.includes('\n'), false);
        return true;
      });
      assert.equal(server.listening, false);
    };

    test('certfile without keyfile, and keyfile without certfile', async () => {
      await expectTlsError(
        { certfile: pki.file('server.crt') },
        '--metrics-certfile',
        pki.file('server.crt'),
        '--metrics-keyfile',
      );
      await expectTlsError(
        { keyfile: pki.file('server.key') },
        '--metrics-keyfile',
        pki.file('server.key'),
        '--metrics-certfile',
      );
    });

    test('caCerts without TLS', async () => {
      await expectTlsError({ caCerts: pki.file('ca.crt') }, '--metrics-ca-certs', pki.file('ca.crt'));
    });

    test('a missing file', async () => {
      const missing = path.join(tmp, 'missing.pem');
      await expectTlsError(
        { certfile: missing, keyfile: pki.file('server.key') },
        '--metrics-certfile',
        missing,
        'no such file',
      );
      await expectTlsError(
        { certfile: pki.file('server.crt'), keyfile: pki.file('server.key'), caCerts: missing },
        '--metrics-ca-certs',
        missing,
      );
    });

    test('files that are not PEM, and a key that does not match the certificate', async () => {
      const junk = path.join(tmp, 'junk.pem');
      fs.writeFileSync(junk, 'not a certificate\n');
      await expectTlsError({ certfile: junk, keyfile: pki.file('server.key') }, '--metrics-certfile', junk);
      await expectTlsError({ certfile: pki.file('server.crt'), keyfile: junk }, '--metrics-keyfile', junk);
      await expectTlsError(
        { certfile: pki.file('server.crt'), keyfile: pki.file('server.key'), caCerts: junk },
        '--metrics-ca-certs',
        junk,
      );
      const empty = path.join(tmp, 'empty-capath');
      fs.mkdirSync(empty);
      fs.writeFileSync(path.join(empty, 'junk.pem'), 'not a certificate\n');
      await expectTlsError(
        { certfile: pki.file('server.crt'), keyfile: pki.file('server.key'), caPath: empty },
        '--metrics-ca-path',
        empty,
        /holds no PEM certificate/,
      );
      await expectTlsError({ caPath: empty }, '--metrics-ca-path', /needs --metrics-certfile and --metrics-keyfile/);
      const broken = path.join(tmp, 'broken.pem');
      fs.writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
      await expectTlsError({ certfile: broken, keyfile: pki.file('server.key') }, '--metrics-certfile', broken);
      await expectTlsError(
        { certfile: pki.file('server.crt'), keyfile: pki.file('client.key') },
        '--metrics-keyfile',
        pki.file('client.key'),
        /does not match/,
      );
    });
  });
});

describe('MetricsServer auth', () => {
  const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

  test('basic auth: good → 200, bad or missing → 401 with WWW-Authenticate; /healthz stays open', async () => {
    const s = await startServer({ basicAuth: 'scraper:s3cr3t:with-colon' });
    const good = await request(s.port, { headers: { authorization: basic('scraper', 's3cr3t:with-colon') } });
    assert.equal(good.status, 200);
    assert.equal(text(good), 'up 1\n');

    s.source.calls = [];
    for (const authorization of [
      basic('scraper', 'wrong'),
      basic('other', 's3cr3t:with-colon'),
      basic('scraper', 's3cr3t:with-colo'),
      'Bearer s3cr3t:with-colon',
      'Basic',
      'garbage',
      undefined,
    ]) {
      const r = await request(s.port, { headers: authorization === undefined ? {} : { authorization } });
      assert.equal(r.status, 401, String(authorization));
      assert.equal(r.headers['www-authenticate'], 'Basic realm="promfork", charset="UTF-8"');
    }
    const head = await request(s.port, { method: 'HEAD' });
    assert.equal(head.status, 401);
    assert.deepEqual(s.source.calls, [], 'the source is not asked for unauthorized scrapes');

    assert.equal((await request(s.port, { path: '/healthz' })).status, 200);
    assert.equal(s.log.all().includes('s3cr3t'), false, 'the password is never logged');
    await s.server.close();
  });

  test('bearer token: good → 200, bad → 401 with WWW-Authenticate: Bearer', async () => {
    const s = await startServer({ bearerToken: 'tok-123' });
    assert.equal((await request(s.port, { headers: { authorization: 'Bearer tok-123' } })).status, 200);
    assert.equal((await request(s.port, { headers: { authorization: 'bearer tok-123' } })).status, 200);
    for (const authorization of ['Bearer tok-1234', 'Bearer tok-12', 'Bearer', basic('tok', '123')]) {
      const r = await request(s.port, { headers: { authorization } });
      assert.equal(r.status, 401, authorization);
      assert.equal(r.headers['www-authenticate'], 'Bearer realm="promfork"');
    }
    const missing = await request(s.port);
    assert.equal(missing.status, 401);
    assert.equal((await request(s.port, { path: '/healthz' })).status, 200);
    assert.equal(s.log.all().includes('tok-123'), false, 'the token is never logged');
    await s.server.close();
  });

  test('both set: either credential is accepted; 401 offers both challenges', async () => {
    const s = await startServer({ basicAuth: 'u:p', bearerToken: 't' });
    assert.equal((await request(s.port, { headers: { authorization: basic('u', 'p') } })).status, 200);
    assert.equal((await request(s.port, { headers: { authorization: 'Bearer t' } })).status, 200);
    const r = await request(s.port, { headers: { authorization: 'Bearer nope' } });
    assert.equal(r.status, 401);
    const raw = r.headers['www-authenticate'];
    assert.match(String(raw), /Basic realm="promfork"/);
    assert.match(String(raw), /Bearer realm="promfork"/);
    await s.server.close();
  });

  test('auth over TLS with client certificates: both are enforced', { skip: NO_TLS }, async () => {
    const s = await startServer({
      certfile: pki.file('server.crt'),
      keyfile: pki.file('server.key'),
      caCerts: pki.file('ca.crt'),
      bearerToken: 'tls-token',
    });
    const tls = { ca: pki.read('ca.crt'), cert: pki.read('client.crt'), key: pki.read('client.key') };
    assert.equal((await request(s.port, { tls })).status, 401);
    assert.equal((await request(s.port, { tls, headers: { authorization: 'Bearer tls-token' } })).status, 200);
    await s.server.close();
  });
});

describe('MetricsServer listening', () => {
  async function occupy(host = '127.0.0.1'): Promise<net.Server> {
    const blocker = net.createServer();
    await new Promise<void>((resolve, reject) => {
      blocker.once('error', reject);
      blocker.listen(0, host, resolve);
    });
    return blocker;
  }
  const closeNet = (srv: net.Server) => new Promise<void>((resolve) => srv.close(() => resolve()));

  test('port taken: retries with warnings, then PROMFORK_ERR_METRICS_SERVER with a clear line', async () => {
    const blocker = await occupy();
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const log = new TestLog();
      const server = new MetricsServer({
        bind: '127.0.0.1',
        port,
        source: new StubSource(),
        log,
        retries: 3,
        retryDelayMs: 5,
      });
      servers.push(server);
      const t0 = performance.now();
      await assert.rejects(server.start(), (err: unknown) => {
        assert.ok(err instanceof PromforkError);
        assert.equal(err.code, 'PROMFORK_ERR_METRICS_SERVER');
        assert.equal(
          err.message,
          `metrics server cannot listen on 127.0.0.1:${port}: address already in use; ` +
            'choose another --metrics-port or PROMETHEUS_METRICS_PORT',
        );
        return true;
      });
      assert.ok(performance.now() - t0 >= 5 + 10 + 20 - 2, 'exponential backoff: 5 + 10 + 20 ms');
      assert.equal(log.warnings.length, 3);
      for (const w of log.warnings) assert.ok(w.includes(`127.0.0.1:${port}`), w);
      assert.equal(server.listening, false);
    } finally {
      await closeNet(blocker);
    }
  });

  test('port taken, then freed during the retries: start() succeeds on that port', async () => {
    const blocker = await occupy();
    const port = (blocker.address() as net.AddressInfo).port;
    const log = new TestLog();
    const origWarning = log.warning.bind(log);
    let freed: Promise<void> | null = null;
    log.warning = (m: string) => {
      origWarning(m);
      freed ??= closeNet(blocker);
    };
    const server = new MetricsServer({
      bind: '127.0.0.1',
      port,
      source: new StubSource(),
      log,
      retries: 5,
      retryDelayMs: 20,
    });
    servers.push(server);
    const started = await server.start();
    await freed;
    assert.equal(started.port, port);
    assert.ok(log.warnings.length >= 1);
    assert.equal((await request(port)).status, 200);
    await server.close();
  });

  test('close() during the retries stops them: start() rejects at once', async () => {
    const blocker = await occupy();
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const log = new TestLog();
      const server = new MetricsServer({
        bind: '127.0.0.1',
        port,
        source: new StubSource(),
        log,
        retries: 5,
        retryDelayMs: 10_000,
      });
      servers.push(server);
      const origWarning = log.warning.bind(log);
      log.warning = (m: string) => {
        origWarning(m);
        void server.close();
      };
      const t0 = performance.now();
      await assert.rejects(server.start(), (err: unknown) => {
        assert.ok(err instanceof PromforkError);
        assert.equal(err.code, 'PROMFORK_ERR_METRICS_SERVER');
        assert.match(err.message, /closed while starting/);
        return true;
      });
      assert.ok(performance.now() - t0 < 5000);
      assert.equal(log.warnings.length, 1);
      assert.equal(server.listening, false);
    } finally {
      await closeNet(blocker);
    }
  });

  test('an address not on this machine fails at once, without retries', async () => {
    const log = new TestLog();
    const server = new MetricsServer({ bind: '192.0.2.1', port: 0, source: new StubSource(), log, retryDelayMs: 1000 });
    servers.push(server);
    await assert.rejects(server.start(), (err: unknown) => {
      assert.ok(err instanceof PromforkError);
      assert.equal(err.code, 'PROMFORK_ERR_METRICS_SERVER');
      assert.match(err.message, /^metrics server cannot listen on 192\.0\.2\.1:0: address not available/);
      assert.match(err.message, /--metrics-bind/);
      return true;
    });
    assert.equal(log.warnings.length, 0);
  });

  test('a privileged port without privileges fails at once', async (t) => {
    // The lowest unprivileged port is a kernel setting; below it only root (CAP_NET_BIND_SERVICE) may listen.
    const firstUnprivileged = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
    if (firstUnprivileged < 2) return t.skip(`every port is unprivileged here (net.ipv4.ip_unprivileged_port_start=${firstUnprivileged})`);
    const port = firstUnprivileged - 1;
    if (process.getuid?.() !== 0) {
      const log = new TestLog();
      const server = new MetricsServer({ bind: '127.0.0.1', port, source: new StubSource(), log });
      servers.push(server);
      await assert.rejects(server.start(), /permission denied/);
      assert.equal(log.warnings.length, 0);
      return;
    }
    // As root every port is allowed: the same start() as user nobody, through setpriv (util-linux).
    const code = `
      import { MetricsServer } from ${JSON.stringify(path.resolve('src/exporter/metrics-server.ts'))};
      const warnings = [];
      const log = { info() {}, warning: (m) => warnings.push(m), error() {} };
      const server = new MetricsServer({ bind: '127.0.0.1', port: ${port}, source: { collect: async () => ({ body: '', contentType: 'text/plain' }) }, log });
      server.start().then(
        () => console.log(JSON.stringify({ started: true })),
        (err) => console.log(JSON.stringify({ message: err.message, warnings })),
      ).finally(() => server.close());`;
    const setpriv = needTool(t, 'setpriv');
    if (setpriv === undefined) return;
    const child = spawnSync(setpriv, ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', 'tsx', '--input-type=module', '-e', code], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(child.status, 0, child.stderr);
    const outcome = JSON.parse(child.stdout) as { started?: boolean; message?: string; warnings?: string[] };
    assert.match(outcome.message ?? 'it started', /permission denied/);
    assert.deepEqual(outcome.warnings, []);
  });

  test('an invalid port is refused before listening', async () => {
    const server = new MetricsServer({ bind: '127.0.0.1', port: 70000, source: new StubSource(), log: new TestLog() });
    await assert.rejects(server.start(), (err: unknown) => err instanceof PromforkError && /--metrics-port/.test(err.message));
  });

  test('IPv6: [::1] and :: work; the URL brackets the address', async (t) => {
    let v6 = true;
    try {
      await closeNet(await occupy('::1'));
    } catch {
      v6 = false;
    }
    if (!v6) {
      t.skip('no IPv6 loopback on this machine');
      return;
    }
    const a = await startServer({ bind: '::1' });
    assert.equal(a.url, `http://[::1]:${a.port}/metrics`);
    assert.equal((await request(a.port, { host: '::1' })).status, 200);
    await a.server.close();

    const b = await startServer({ bind: '[::1]' });
    assert.equal(b.url, `http://[::1]:${b.port}/metrics`);
    await b.server.close();

    const c = await startServer({ bind: '::' });
    assert.equal(c.url, `http://[::]:${c.port}/metrics`);
    assert.equal((await request(c.port, { host: '::1' })).status, 200);
    await c.server.close();
  });

  test('close(): idempotent, before start too; a keep-alive connection does not hold it open', async () => {
    const never = new MetricsServer({ bind: '127.0.0.1', port: 0, source: new StubSource(), log: new TestLog() });
    await never.close();
    await never.close();
    await assert.rejects(never.start(), (err: unknown) => err instanceof PromforkError);

    const s = await startServer();
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: s.port, path: '/metrics', agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      }).on('error', reject);
    });
    await s.server.close();
    assert.equal(s.server.listening, false);
    await s.server.close();
    agent.destroy();
    await assert.rejects(request(s.port), /ECONNREFUSED/);
  });
});
