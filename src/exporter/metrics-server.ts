// The metrics HTTP(S) server of the primary (or of the sidecar).
//
// It serves what a MetricsSource produces and nothing else: the server itself never blocks on anything but the
// source, and the source is given a deadline too. TLS options are really wired (docs/design.md, pitfall 12): with a CA bundle,
// a client without a certificate signed by it is refused at the TLS handshake. Basic and bearer auth compare
// sha256 digests with timingSafeEqual, and secrets are never logged.

import { createHash, createPrivateKey, timingSafeEqual, X509Certificate, type KeyObject } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createSecureContext, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { PromforkError } from '../errors.js';
import type { Settings } from '../config/types.js';
import { negotiate, type ExpositionFormat } from './exposition.js';

const gzip = promisify(gzipCallback);

export type { ExpositionFormat };

/** Produces the exposition; the server only asks it. */
export interface MetricsSource {
  collect(format: ExpositionFormat): Promise<{ body: string; contentType: string }>;
}

export interface MetricsServerLog {
  info(m: string): void;
  warning(m: string): void;
  error(m: string, e?: unknown): void;
}

export interface MetricsServerOptions {
  /** Host to listen on (`0.0.0.0`, `::`, `127.0.0.1`, a name; `[v6]` brackets are accepted). */
  bind: string;
  /** 0 picks a free port: read the real one from start(). */
  port: number;
  certfile?: string | null;
  keyfile?: string | null;
  /** CA bundle (PEM): when set, client certificates signed by it are required. */
  caCerts?: string | null;
  /** Directory of CA certificates (PEM files), used with or instead of caCerts. */
  caPath?: string | null;
  /** `USER:PASSWORD` for HTTP basic auth on /metrics. */
  basicAuth?: string | null;
  /** Token for `Authorization: Bearer TOKEN` on /metrics. */
  bearerToken?: string | null;
  source: MetricsSource;
  log: MetricsServerLog;
  /** Listen retries when the address is in use (default 5). */
  retries?: number;
  /** First delay between retries, doubled each time (default 200 ms). */
  retryDelayMs?: number;
  /** A scrape whose source has not answered by then gets 503 (default 10 000 ms). */
  collectTimeoutMs?: number;
  /** A request must arrive whole within this time, its headers within min(this, 5 s) (default 10 000 ms). */
  requestTimeoutMs?: number;
}

/** Maps the resolved settings onto the server's options. */
export function metricsServerOptions(
  settings: Pick<
    Settings,
    | 'metricsBind'
    | 'metricsPort'
    | 'metricsCertfile'
    | 'metricsKeyfile'
    | 'metricsCaCerts'
    | 'metricsCaPath'
    | 'metricsBasicAuth'
    | 'metricsBearerToken'
  >,
  source: MetricsSource,
  log: MetricsServerLog,
): MetricsServerOptions {
  return {
    bind: settings.metricsBind,
    port: settings.metricsPort,
    certfile: settings.metricsCertfile,
    keyfile: settings.metricsKeyfile,
    caCerts: settings.metricsCaCerts,
    caPath: settings.metricsCaPath,
    basicAuth: settings.metricsBasicAuth,
    bearerToken: settings.metricsBearerToken,
    source,
    log,
  };
}

/** Requests must arrive whole within this time (server.requestTimeout), by default. */
export const REQUEST_TIMEOUT_MS = 10_000;
const HEADERS_TIMEOUT_MS = 5_000;
/** How often Node checks the request and headers timeouts (its default, 30 s, would make them lax). */
const TIMEOUT_CHECK_MS = 1_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * Open connections the metrics port keeps at once; more are closed as soon as accepted. Its own budget, apart from
 * the app port's: a flood of (idle) connections to the metrics port cannot take the primary's descriptors, and
 * each one it keeps is closed by the headers timeout. Scrapers need one connection each.
 */
export const METRICS_MAX_CONNECTIONS = 32;
/** Bodies larger than this are gzipped when the client accepts gzip. */
export const GZIP_MIN_BYTES = 1024;
const ALLOW = 'GET, HEAD';
const REALM = 'promfork';

const INDEX_HTML =
  '<!doctype html>\n<html><head><meta charset="utf-8"><title>promfork metrics</title></head>\n' +
  '<body><h1>promfork metrics</h1><p><a href="/metrics">/metrics</a></p></body></html>\n';

// ---------------------------------------------------------------------------------------------------------------
// Content coding

/** True when `Accept-Encoding` accepts gzip (`gzip` or `*`, with q > 0). */
function acceptsGzip(header: string | string[] | undefined): boolean {
  const value = Array.isArray(header) ? header.join(',') : (header ?? '');
  let gz: number | undefined;
  let star: number | undefined;
  for (const item of value.split(',')) {
    const [coding = '', ...params] = item.split(';').map((s) => s.trim().toLowerCase());
    let q = 1;
    for (const p of params) {
      const m = /^q\s*=\s*([0-9.]+)$/.exec(p);
      if (m) q = Number(m[1]);
    }
    if (coding === 'gzip' || coding === 'x-gzip') gz = q;
    else if (coding === '*') star = q;
  }
  return (gz ?? star ?? 0) > 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Auth

const sha256 = (data: string | Buffer): Buffer => createHash('sha256').update(data).digest();

/** Constant-time comparison of two secrets of any lengths (digests have equal lengths). */
function secretEquals(given: string | Buffer, expectedDigest: Buffer): boolean {
  return timingSafeEqual(sha256(given), expectedDigest);
}

interface AuthConfig {
  basic: Buffer | null;
  bearer: Buffer | null;
}

function authorized(header: string | undefined, auth: AuthConfig): boolean {
  if (!header) return false;
  const m = /^([A-Za-z]+) +(\S+) *$/.exec(header);
  if (!m) return false;
  const scheme = m[1]!.toLowerCase();
  const credentials = m[2]!;
  if (scheme === 'basic' && auth.basic) {
    return secretEquals(Buffer.from(credentials, 'base64'), auth.basic);
  }
  if (scheme === 'bearer' && auth.bearer) {
    return secretEquals(credentials, auth.bearer);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------------
// TLS material

interface TlsMaterial {
  cert: string;
  key: string;
  ca: string | null;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

const tlsError = (message: string, cause?: unknown) =>
  new PromforkError('PROMFORK_ERR_TLS', message, cause === undefined ? undefined : { cause });

const reason = (err: unknown): string => {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return 'no such file';
  if (e?.code === 'EACCES') return 'permission denied';
  if (e?.code === 'EISDIR') return 'is a directory';
  return String(e?.message ?? err).split('\n', 1)[0]!;
};

async function readPem(option: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw tlsError(`cannot read ${option} ${file}: ${reason(err)}`, err);
  }
}

function parseCertificates(option: string, file: string, text: string): X509Certificate[] {
  const blocks = text.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw tlsError(`${option} ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((block) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw tlsError(`${option} ${file} holds an invalid PEM certificate: ${reason(err)}`, err);
    }
  });
}

/** The certificates of every file in a CA directory (OpenSSL's capath: hashed links, .pem, .crt). */
async function readCaDirectory(dir: string): Promise<string> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (err) {
    throw tlsError(`cannot read --metrics-ca-path ${dir}: ${reason(err)}`, err);
  }
  const blocks: string[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    let text: string;
    try {
      if (!(await stat(file)).isFile()) continue;
      text = await readFile(file, 'utf8');
    } catch {
      continue; // a dangling link or an unreadable file is not a CA certificate
    }
    blocks.push(...(text.match(PEM_CERT) ?? []));
  }
  if (blocks.length === 0) throw tlsError(`--metrics-ca-path ${dir} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.join('\n') + '\n';
}

async function loadTls(opts: MetricsServerOptions, log: MetricsServerLog): Promise<TlsMaterial | null> {
  const { certfile, keyfile, caCerts, caPath } = opts;
  if (certfile && !keyfile) {
    throw tlsError(`--metrics-certfile ${certfile} is set but --metrics-keyfile is not: HTTPS needs both`);
  }
  if (keyfile && !certfile) {
    throw tlsError(`--metrics-keyfile ${keyfile} is set but --metrics-certfile is not: HTTPS needs both`);
  }
  if (!certfile || !keyfile) {
    if (caCerts || caPath) {
      throw tlsError(
        `${caCerts ? `--metrics-ca-certs ${caCerts}` : `--metrics-ca-path ${caPath}`} needs --metrics-certfile and --metrics-keyfile: ` +
          'client certificates are only verified over HTTPS',
      );
    }
    return null;
  }
  const [cert, key, caFile, caDir] = await Promise.all([
    readPem('--metrics-certfile', certfile),
    readPem('--metrics-keyfile', keyfile),
    caCerts ? readPem('--metrics-ca-certs', caCerts) : Promise.resolve(null),
    caPath ? readCaDirectory(caPath) : Promise.resolve(null),
  ]);
  const [leaf] = parseCertificates('--metrics-certfile', certfile, cert);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw tlsError(
      `--metrics-keyfile ${keyfile} is not a usable PEM private key (encrypted keys are not supported): ${reason(err)}`,
      err,
    );
  }
  if (privateKey.type !== 'private' || !leaf!.checkPrivateKey(privateKey)) {
    throw tlsError(`--metrics-keyfile ${keyfile} does not match the certificate in --metrics-certfile ${certfile}`);
  }
  if (caFile !== null) parseCertificates('--metrics-ca-certs', caCerts!, caFile);
  if (caDir !== null) parseCertificates('--metrics-ca-path', caPath!, caDir);
  const ca = caFile === null && caDir === null ? null : (caFile ?? '') + (caDir ?? '');
  try {
    createSecureContext({ cert, key, ...(ca !== null ? { ca } : {}) });
  } catch (err) {
    throw tlsError(
      `TLS setup failed with --metrics-certfile ${certfile}, --metrics-keyfile ${keyfile}` +
        `${caCerts ? `, --metrics-ca-certs ${caCerts}` : ''}${caPath ? `, --metrics-ca-path ${caPath}` : ''}: ${reason(err)}`,
      err,
    );
  }
  const validTo = Date.parse(leaf!.validTo);
  if (Number.isFinite(validTo) && validTo < Date.now()) {
    log.warning(`metrics server: the certificate in --metrics-certfile ${certfile} expired on ${leaf!.validTo}`);
  }
  return { cert, key, ca };
}

// ---------------------------------------------------------------------------------------------------------------
// Listening

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });

function listenOnce(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port, host });
  });
}

const hostForUrl = (host: string) => (host.includes(':') ? `[${host}]` : host);

function listenError(err: unknown, address: string, host: string): PromforkError {
  const code = (err as NodeJS.ErrnoException)?.code;
  const port = 'choose another --metrics-port or PROMETHEUS_METRICS_PORT';
  const bind = 'choose another --metrics-bind or PROMETHEUS_BIND_ADDRESS';
  let why: string;
  switch (code) {
    case 'EADDRINUSE':
      why = `address already in use; ${port}`;
      break;
    case 'EACCES':
      why = `permission denied (ports below 1024 need privileges); ${port}`;
      break;
    case 'EADDRNOTAVAIL':
      why = `address not available on this machine; ${bind}`;
      break;
    case 'EAFNOSUPPORT':
      why = `address family not supported on this machine; ${bind}`;
      break;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      why = `cannot resolve host ${JSON.stringify(host)}; ${bind}`;
      break;
    default:
      why = reason(err);
  }
  return new PromforkError('PROMFORK_ERR_METRICS_SERVER', `metrics server cannot listen on ${address}: ${why}`, {
    cause: err,
  });
}

// ---------------------------------------------------------------------------------------------------------------

export class MetricsServer {
  private readonly opts: MetricsServerOptions;
  private readonly host: string;
  private readonly auth: AuthConfig;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly collectTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private server: http.Server | https.Server | null = null;
  private starting: Promise<{ url: string; port: number }> | null = null;
  private readonly closing = new AbortController();
  private requireClientCert = false;

  constructor(opts: MetricsServerOptions) {
    this.opts = opts;
    const bind = opts.bind.trim();
    this.host = /^\[.*\]$/.test(bind) ? bind.slice(1, -1) : bind || '0.0.0.0';
    this.retries = Math.max(0, Math.floor(opts.retries ?? 5));
    this.retryDelayMs = Math.max(0, opts.retryDelayMs ?? 200);
    this.collectTimeoutMs = Math.max(1, opts.collectTimeoutMs ?? 10_000);
    this.requestTimeoutMs = Math.max(1, opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS);
    this.auth = {
      basic: opts.basicAuth ? sha256(opts.basicAuth) : null,
      bearer: opts.bearerToken ? sha256(opts.bearerToken) : null,
    };
  }

  get listening(): boolean {
    return this.server?.listening ?? false;
  }

  /** Listens (retrying while the address is in use); resolves with the /metrics URL and the real port. */
  start(): Promise<{ url: string; port: number }> {
    this.starting ??= this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<{ url: string; port: number }> {
    const { port, basicAuth } = this.opts;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new PromforkError(
        'PROMFORK_ERR_METRICS_SERVER',
        `metrics server: --metrics-port ${String(port)} is not a port (0-65535)`,
      );
    }
    if (basicAuth && !/^[^:]+:.+$/.test(basicAuth)) {
      throw new PromforkError('PROMFORK_ERR_METRICS_SERVER', 'metrics server: --metrics-basic-auth expects USER:PASSWORD');
    }
    const tls = await loadTls(this.opts, this.opts.log);
    this.requireClientCert = tls?.ca != null;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => {
        this.opts.log.error('metrics server: error while answering a request', err);
        if (!res.headersSent) this.send(req, res, 500, 'internal error\n');
        else res.destroy();
      });
    };
    const timeouts: http.ServerOptions = {
      requestTimeout: this.requestTimeoutMs,
      headersTimeout: Math.min(HEADERS_TIMEOUT_MS, this.requestTimeoutMs),
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_MS, this.requestTimeoutMs),
    };
    const server = tls
      ? https.createServer(
          {
            ...timeouts,
            cert: tls.cert,
            key: tls.key,
            minVersion: 'TLSv1.2',
            handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
            ...(tls.ca !== null ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
          },
          handler,
        )
      : http.createServer(timeouts, handler);
    server.maxConnections = METRICS_MAX_CONNECTIONS;
    this.server = server;

    const address = `${hostForUrl(this.host)}:${port}`;
    const closedError = () =>
      new PromforkError('PROMFORK_ERR_METRICS_SERVER', `metrics server on ${address} was closed while starting`);
    for (let attempt = 0; ; attempt++) {
      if (this.closing.signal.aborted) throw closedError();
      try {
        await listenOnce(server, port, this.host);
        break;
      } catch (err) {
        if (this.closing.signal.aborted) throw closedError();
        if ((err as NodeJS.ErrnoException)?.code === 'EADDRINUSE' && attempt < this.retries) {
          const delay = this.retryDelayMs * 2 ** attempt;
          this.opts.log.warning(
            `metrics server: ${address} is already in use; retry ${attempt + 1}/${this.retries} in ${delay} ms`,
          );
          await sleep(delay, this.closing.signal);
          continue;
        }
        throw listenError(err, address, this.host);
      }
    }
    if (this.closing.signal.aborted) {
      // close() ran between 'listening' and here: do not leave the socket open.
      server.close();
      throw closedError();
    }
    server.on('error', (err) => this.opts.log.error('metrics server error', err));

    const realPort = (server.address() as AddressInfo).port;
    const url = `${tls ? 'https' : 'http'}://${hostForUrl(this.host)}:${realPort}/metrics`;
    const features = [
      tls ? (tls.ca !== null ? 'TLS, client certificates required' : 'TLS') : null,
      this.auth.basic ? 'basic auth' : null,
      this.auth.bearer ? 'bearer token' : null,
    ].filter((f) => f !== null);
    this.opts.log.info(`Serving metrics on ${url}${features.length ? ` (${features.join(', ')})` : ''}`);
    return { url, port: realPort };
  }

  /** Stops listening and drops open connections (keep-alive included). Safe to call at any time, twice. */
  async close(): Promise<void> {
    this.closing.abort();
    const server = this.server;
    if (!server?.listening) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private send(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    status: number,
    body: string | Buffer,
    headers: http.OutgoingHttpHeaders = {},
  ): void {
    const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    res.writeHead(status, {
      'Content-Type': 'text/plain; charset=utf-8',
      'X-Content-Type-Options': 'nosniff',
      ...headers,
      'Content-Length': buf.length,
    });
    if (req.method === 'HEAD') res.end();
    else res.end(buf);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    req.resume(); // no route reads a body; drain it so keep-alive goes on
    if (this.requireClientCert && !(req.socket as TLSSocket).authorized) {
      // Never reached while rejectUnauthorized holds; a second lock on the same door.
      this.send(req, res, 403, 'client certificate required\n', { Connection: 'close' });
      return;
    }
    const path = (req.url ?? '/').split(/[?#]/, 1)[0];
    const route = path === '/metrics' || path === '/' || path === '/healthz' ? path : null;
    if (route === null) {
      this.send(req, res, 404, 'not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      this.send(req, res, 405, 'method not allowed\n', { Allow: ALLOW });
      return;
    }
    if (route === '/healthz') {
      this.send(req, res, 200, 'ok', { 'Cache-Control': 'no-store' });
      return;
    }
    if (route === '/') {
      this.send(req, res, 200, INDEX_HTML, { 'Content-Type': 'text/html; charset=utf-8' });
      return;
    }
    if (this.auth.basic || this.auth.bearer) {
      if (!authorized(req.headers.authorization, this.auth)) {
        const challenges: string[] = [];
        if (this.auth.basic) challenges.push(`Basic realm="${REALM}", charset="UTF-8"`);
        if (this.auth.bearer) challenges.push(`Bearer realm="${REALM}"`);
        this.send(req, res, 401, 'unauthorized\n', { 'WWW-Authenticate': challenges });
        return;
      }
    }
    await this.serveMetrics(req, res);
  }

  private async serveMetrics(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const format = negotiate(req.headers.accept);
    let timer: NodeJS.Timeout | undefined;
    let out: { body: string; contentType: string };
    try {
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new CollectTimeout(`metrics source did not answer within ${this.collectTimeoutMs} ms`)),
          this.collectTimeoutMs,
        );
      });
      // A source that throws synchronously is handled like one that rejects.
      const collected = Promise.resolve().then(() => this.opts.source.collect(format));
      collected.catch(() => {}); // a late rejection, after the deadline answered, is not unhandled
      out = await Promise.race([collected, deadline]);
      if (typeof out?.body !== 'string' || typeof out?.contentType !== 'string') {
        throw new TypeError('metrics source returned no { body, contentType } strings');
      }
    } catch (err) {
      const timedOut = err instanceof CollectTimeout;
      const line = reason(err);
      this.opts.log.error(`metrics server: collecting ${format} metrics failed: ${line}`, timedOut ? undefined : err);
      if (timedOut) this.send(req, res, 503, 'metrics collection timed out\n', { 'Cache-Control': 'no-store' });
      else this.send(req, res, 500, 'metrics collection failed\n', { 'Cache-Control': 'no-store' });
      return;
    } finally {
      clearTimeout(timer);
    }
    let body = Buffer.from(out.body, 'utf8');
    const headers: http.OutgoingHttpHeaders = {
      'Content-Type': out.contentType,
      'Cache-Control': 'no-store',
      Vary: 'Accept, Accept-Encoding',
    };
    if (body.length > GZIP_MIN_BYTES && acceptsGzip(req.headers['accept-encoding'])) {
      body = await gzip(body);
      headers['Content-Encoding'] = 'gzip';
    }
    if (res.destroyed) return; // the scraper went away while we collected
    this.send(req, res, 200, body, headers);
  }
}

class CollectTimeout extends Error {}
