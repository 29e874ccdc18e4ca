// One scrape of a metrics endpoint for `promfork top`: a GET over http or https with a deadline, optional
// auth headers, TLS options (a CA, a client certificate, or --insecure), and every failure turned into one
// PromforkError line that names the URL and the fix.

import http from 'node:http';
import https from 'node:https';
import { PromforkError } from '../errors.js';
import { ExpositionSyntaxError, parseExposition } from './exposition-parser.js';
import { checkNamespace, type ScrapeSnapshot } from './frame.js';

export interface FetchOptions {
  /** Extra request headers (Authorization from --bearer-token, --basic-auth or --header). */
  headers: Record<string, string>;
  timeoutMs: number;
  /** https: do not verify the server's certificate. */
  insecure: boolean;
  /** https: PEM CA certificates to verify the server with, and a client certificate and key. */
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** Whether credentials were given (a 401 then says they were refused). */
  credentials: boolean;
}

/** Bodies larger than this are refused (a promfork exposition is far smaller). */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** The URL as shown to the user: without a password. */
export function displayUrl(url: URL): string {
  if (!url.password && !url.username) return url.href;
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href;
}

/** GET the body of `url`; throws PromforkError PROMFORK_ERR_SCRAPE_UNREACHABLE or PROMFORK_ERR_SCRAPE_STATUS. */
export function fetchText(url: URL, opts: FetchOptions): Promise<{ text: string; at: number; time: Date }> {
  const shown = displayUrl(url);
  const secure = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: PromforkError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(err);
    };
    const options: https.RequestOptions = {
      method: 'GET',
      agent: false,
      headers: { Accept: 'text/plain;version=0.0.4', 'User-Agent': 'promfork-top', ...opts.headers },
    };
    if (secure) {
      options.rejectUnauthorized = !opts.insecure;
      if (opts.ca) options.ca = opts.ca;
      if (opts.cert) options.cert = opts.cert;
      if (opts.key) options.key = opts.key;
    }
    const onResponse = (res: http.IncomingMessage) => {
      const at = performance.now();
      const time = new Date();
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) {
          fail(new PromforkError('PROMFORK_ERR_SCRAPE_FORMAT', `${shown} answered more than ${MAX_BODY_BYTES / 1024 / 1024} MiB; --url must name a promfork metrics endpoint`));
          return;
        }
        chunks.push(c);
      });
      res.on('error', (err) => fail(unreachable(shown, err, opts)));
      res.on('end', () => {
        if (settled) return;
        const text = Buffer.concat(chunks).toString('utf8');
        if (status !== 200) {
          fail(statusError(shown, status, res, text, opts));
          return;
        }
        settled = true;
        clearTimeout(timer);
        resolve({ text, at, time });
      });
    };
    const req = secure ? https.request(url, options, onResponse) : http.request(url, options, onResponse);
    const timer = setTimeout(() => {
      fail(
        new PromforkError(
          'PROMFORK_ERR_SCRAPE_UNREACHABLE',
          `no answer from ${shown} within ${opts.timeoutMs / 1000}s; check that the server is up and not overloaded, or raise --timeout`,
        ),
      );
    }, opts.timeoutMs);
    req.on('error', (err) => fail(unreachable(shown, err, opts)));
    req.end();
  });
}

/** One scrape, parsed and checked for `namespace`. */
export async function fetchScrape(url: URL, namespace: string, opts: FetchOptions): Promise<ScrapeSnapshot> {
  const { text, at, time } = await fetchText(url, opts);
  const shown = displayUrl(url);
  let exposition;
  try {
    exposition = parseExposition(text);
  } catch (err) {
    if (!(err instanceof ExpositionSyntaxError)) throw err;
    throw new PromforkError(
      'PROMFORK_ERR_SCRAPE_FORMAT',
      `${shown} did not answer in the Prometheus text format (${err.message}); --url must name a promfork metrics endpoint, e.g. http://HOST:9090/metrics`,
    );
  }
  checkNamespace(exposition, namespace, shown);
  return { exposition, at, time };
}

// Why a server certificate was refused, in OpenSSL's words, by Node's error code. From the code, not from the
// error's message: Node 24 and later append advice about --use-system-ca to these messages.
const TLS_REFUSALS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in certificate chain',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unable to get local issuer certificate',
  CERT_HAS_EXPIRED: 'certificate has expired',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
};

function unreachable(shown: string, err: Error, opts: FetchOptions): PromforkError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const host = new URL(shown).host;
  let detail: string;
  let fix = 'check that promfork is running with its metrics server there (--metrics-bind, --metrics-port; default port 9090) and that --url names it';
  if (code === 'ECONNREFUSED') detail = `connection refused by ${host}`;
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    detail = `host ${new URL(shown).hostname} not found`;
    fix = 'check the host name in --url';
  } else if (Object.hasOwn(TLS_REFUSALS, code) || code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    detail = `its TLS certificate was refused (${TLS_REFUSALS[code] ?? oneLine(err.message)})`;
    fix = 'give the CA that signed it with --cacert FILE, or skip verification with --insecure (a self-signed certificate)';
  } else if (code === 'EPROTO' || code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/i.test(err.message)) {
    detail = /wrong version number/i.test(err.message) ? 'the TLS handshake failed (the server answered in plain text)' : `the TLS handshake failed (${oneLine(err.message)})`;
    fix = 'is the server plain http? then use an http:// URL';
  } else if (code.startsWith('HPE_')) {
    detail = `the answer is not HTTP (${oneLine(err.message)})`;
    fix = 'is the server https? then use an https:// URL';
  } else if (/certificate required|alert bad certificate|alert unknown ca|alert certificate unknown/i.test(err.message)) {
    detail = opts.cert ? 'the server refused our client certificate' : 'the server requires a client certificate';
    fix = 'give one signed by a CA of its --metrics-ca-certs with --cert FILE --key FILE';
  } else if (code === 'ECONNRESET' && shown.startsWith('http:')) {
    detail = 'the server closed the connection without an answer';
    fix = 'if it serves https (--metrics-certfile), use an https:// URL';
  } else if (code === 'ECONNRESET' && !opts.cert) {
    detail = 'the connection was reset during the TLS handshake';
    fix = 'if the metrics server requires a client certificate (--metrics-ca-certs), give one with --cert FILE --key FILE';
  } else detail = oneLine(err.message) || code;
  return new PromforkError('PROMFORK_ERR_SCRAPE_UNREACHABLE', `cannot reach ${shown}: ${detail}; ${fix}`, { cause: err });
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function statusError(shown: string, status: number, res: http.IncomingMessage, body: string, opts: FetchOptions): PromforkError {
  const what = `${shown} answered ${status} ${res.statusMessage ?? ''}`.trimEnd();
  let fix: string;
  if (status === 401) {
    fix = opts.credentials
      ? 'the credentials given were refused: check --bearer-token, --basic-auth or --header'
      : 'the metrics server requires auth: give --bearer-token TOKEN, --basic-auth USER:PASSWORD or --header "Authorization: ..."';
  } else if (status === 403) fix = 'the metrics server refused this client (a client certificate? give --cert FILE --key FILE)';
  else if (status === 404) fix = 'promfork serves the metrics at /metrics: --url http://HOST:PORT/metrics';
  else if (status >= 300 && status < 400) {
    const location = res.headers.location;
    fix = location ? `it redirects to ${location}: give that address with --url` : 'give the final address with --url';
  } else {
    const first = body.split('\n', 1)[0]!.trim().slice(0, 100);
    fix = `${first ? `it said "${first}"; ` : ''}check the server's error log`;
  }
  return new PromforkError('PROMFORK_ERR_SCRAPE_STATUS', `${what}; ${fix}`);
}
