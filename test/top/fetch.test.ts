// One scrape of promfork top against small local servers (127.0.0.1 only): auth headers, each failure as one
// line with its code (refused, timeout, 401, 404, 500, not an exposition), and https: a self-signed
// certificate refused, then accepted with --insecure or --cacert, and a client certificate.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ErrorCode } from '../../src/errors.js';
import { PromforkError } from '../../src/errors.js';
import { fetchScrape, fetchText, type FetchOptions } from '../../src/top/fetch.js';
import { optedOut, requireTool, SKIP_ENV } from '../helpers/tools.js';

const EXPOSITION = '# TYPE gunicorn_master_worker_restarts_total counter\ngunicorn_master_worker_restarts_total 0\n';
const OPTS: FetchOptions = { headers: {}, timeoutMs: 2000, insecure: false, credentials: false };

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
const servers: (http.Server | https.Server)[] = [];

async function listen(server: http.Server | https.Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function httpServer(handler: Handler): Promise<string> {
  return `http://127.0.0.1:${await listen(http.createServer(handler))}/metrics`;
}

after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function fails(p: Promise<unknown>, code: ErrorCode, line: string | RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof PromforkError, String(err));
    assert.equal(err.code, code);
    if (typeof line === 'string') assert.equal(err.toLine(), `Error: ${line} [${code}]`);
    else assert.match(err.message, line);
    return true;
  });
}

/** A port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

describe('fetch over http', () => {
  it('sends the auth header and asks for the text format; parses and checks the namespace', async () => {
    let seen: http.IncomingHttpHeaders = {};
    const url = await httpServer((req, res) => {
      seen = req.headers;
      res.end(EXPOSITION);
    });
    const s = await fetchScrape(new URL(url), 'gunicorn', { ...OPTS, headers: { Authorization: 'Bearer t0k' } });
    assert.equal(seen.authorization, 'Bearer t0k');
    assert.equal(seen.accept, 'text/plain;version=0.0.4');
    assert.equal(s.exposition.samples.length, 1);
    assert.ok(s.at > 0 && s.time instanceof Date);
  });

  it('credentials in the URL are sent as basic auth and never shown', async () => {
    let auth = '';
    const url = await httpServer((req, res) => {
      auth = req.headers.authorization ?? '';
      res.statusCode = 401;
      res.end();
    });
    const withCreds = url.replace('http://', 'http://prom:hunter2@');
    await fails(
      fetchText(new URL(withCreds), { ...OPTS, credentials: true }),
      'PROMFORK_ERR_SCRAPE_STATUS',
      `${url} answered 401 Unauthorized; the credentials given were refused: check --bearer-token, --basic-auth or --header`,
    );
    assert.equal(auth, `Basic ${Buffer.from('prom:hunter2').toString('base64')}`);
  });

  it('each failure is one line naming the URL and the fix', async () => {
    const port = await closedPort();
    await fails(
      fetchText(new URL(`http://127.0.0.1:${port}/metrics`), OPTS),
      'PROMFORK_ERR_SCRAPE_UNREACHABLE',
      `cannot reach http://127.0.0.1:${port}/metrics: connection refused by 127.0.0.1:${port}; check that promfork is running with its metrics server there (--metrics-bind, --metrics-port; default port 9090) and that --url names it`,
    );
    const status = (code: number, body = '', headers: Record<string, string> = {}) =>
      httpServer((_req, res) => {
        res.writeHead(code, headers);
        res.end(body);
      });
    await fails(
      fetchText(new URL(await status(401)), OPTS),
      'PROMFORK_ERR_SCRAPE_STATUS',
      /answered 401 Unauthorized; the metrics server requires auth: give --bearer-token TOKEN, --basic-auth USER:PASSWORD or --header "Authorization: \.\.\."$/,
    );
    const notFound = await status(404, 'not found\n');
    await fails(fetchText(new URL(notFound), OPTS), 'PROMFORK_ERR_SCRAPE_STATUS', `${notFound} answered 404 Not Found; promfork serves the metrics at /metrics: --url http://HOST:PORT/metrics`);
    const broken = await status(503, 'metrics source did not answer within 5000 ms\nmore\n');
    await fails(
      fetchText(new URL(broken), OPTS),
      'PROMFORK_ERR_SCRAPE_STATUS',
      `${broken} answered 503 Service Unavailable; it said "metrics source did not answer within 5000 ms"; check the server's error log`,
    );
    const moved = await status(301, '', { Location: 'https://elsewhere/metrics' });
    await fails(fetchText(new URL(moved), OPTS), 'PROMFORK_ERR_SCRAPE_STATUS', `${moved} answered 301 Moved Permanently; it redirects to https://elsewhere/metrics: give that address with --url`);
    const html = await status(200, '<html><body>promfork</body></html>\n');
    await fails(
      fetchScrape(new URL(html), 'gunicorn', OPTS),
      'PROMFORK_ERR_SCRAPE_FORMAT',
      `${html} did not answer in the Prometheus text format (line 1: expected a metric name: <html><body>promfork</body></html>); --url must name a promfork metrics endpoint, e.g. http://HOST:9090/metrics`,
    );
  });

  it('a server that does not answer: the deadline', async () => {
    const url = await httpServer(() => {}); // never answers
    await fails(
      fetchText(new URL(url), { ...OPTS, timeoutMs: 300 }),
      'PROMFORK_ERR_SCRAPE_UNREACHABLE',
      `no answer from ${url} within 0.3s; check that the server is up and not overloaded, or raise --timeout`,
    );
  });
});

describe('fetch over https', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-top-tls-'));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync(requireTool('openssl'), args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  // Skipped only on request (PROMFORK_TEST_SKIP=openssl); without openssl the certificates cannot be made: fail.
  const skip = optedOut().has('openssl') ? `opted out: ${SKIP_ENV}=openssl` : false;

  after(() => rmSync(dir, { recursive: true, force: true }));
  before(() => {
    if (skip) return;
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=top-test-ca',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    for (const [name, ext] of [
      ['server', 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'],
      ['client', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n'],
    ] as const) {
      writeFileSync(file(`${name}.ext`), ext);
      openssl('req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
      openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', name === 'server' ? '11' : '12',
        '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`);
    }
  });

  it('a certificate from an unknown CA is refused; --insecure or --cacert accept it', { skip }, async () => {
    const port = await listen(https.createServer({ cert: readFileSync(file('server.crt')), key: readFileSync(file('server.key')) }, (_req, res) => res.end(EXPOSITION)));
    const url = new URL(`https://127.0.0.1:${port}/metrics`);
    await fails(
      fetchText(url, OPTS),
      'PROMFORK_ERR_SCRAPE_UNREACHABLE',
      `cannot reach ${url.href}: its TLS certificate was refused (unable to verify the first certificate); give the CA that signed it with --cacert FILE, or skip verification with --insecure (a self-signed certificate)`,
    );
    assert.equal((await fetchText(url, { ...OPTS, insecure: true })).text, EXPOSITION);
    assert.equal((await fetchText(url, { ...OPTS, ca: readFileSync(file('ca.crt')) })).text, EXPOSITION);
    // Plain http to a TLS port, and TLS to a plain http port: which scheme to use.
    await fails(fetchText(new URL(`http://127.0.0.1:${port}/metrics`), OPTS), 'PROMFORK_ERR_SCRAPE_UNREACHABLE', /: the server closed the connection without an answer; if it serves https \(--metrics-certfile\), use an https:\/\/ URL$/);
    const plain = await httpServer((_req, res) => res.end(EXPOSITION));
    await fails(fetchText(new URL(plain.replace('http:', 'https:')), OPTS), 'PROMFORK_ERR_SCRAPE_UNREACHABLE', /: the TLS handshake failed \(the server answered in plain text\); is the server plain http\? then use an http:\/\/ URL$/);
  });

  it('a server that requires a client certificate: --cert and --key', { skip }, async () => {
    const ca = readFileSync(file('ca.crt'));
    const port = await listen(
      https.createServer(
        { cert: readFileSync(file('server.crt')), key: readFileSync(file('server.key')), ca, requestCert: true, rejectUnauthorized: true },
        (_req, res) => res.end(EXPOSITION),
      ),
    );
    const url = new URL(`https://127.0.0.1:${port}/metrics`);
    await fails(
      fetchText(url, { ...OPTS, ca }),
      'PROMFORK_ERR_SCRAPE_UNREACHABLE',
      `cannot reach ${url.href}: the server requires a client certificate; give one signed by a CA of its --metrics-ca-certs with --cert FILE --key FILE`,
    );
    const ok = await fetchText(url, { ...OPTS, ca, cert: readFileSync(file('client.crt')), key: readFileSync(file('client.key')) });
    assert.equal(ok.text, EXPOSITION);
  });
});
