// Parsing of one `bind` address, with Gunicorn's forms (util.parse_address):
// HOST:PORT, HOST (port 8000), [IPV6]:PORT, [IPV6], :PORT (all interfaces), unix:PATH, unix://PATH.
// An optional tcp:// prefix is accepted and dropped, as Gunicorn does.

import { PromforkError } from '../errors.js';

export type BindAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export const DEFAULT_BIND_PORT = 8000;

/** What the address forms are, for error messages and --help. */
export const BIND_FORMS = 'HOST:PORT, HOST, [IPV6]:PORT or unix:PATH';

/** The parsed address, or a string saying what is wrong with it. */
export function tryParseBind(addr: string): BindAddress | string {
  const unix = /^unix:(?:\/\/)?/.exec(addr);
  if (unix) {
    const path = addr.slice(unix[0].length);
    return path === '' ? 'the unix socket path is empty' : { kind: 'unix', path };
  }
  const rest = addr.startsWith('tcp://') ? addr.slice('tcp://'.length) : addr;
  let host: string;
  let port: string | undefined;
  if (rest.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(rest);
    if (!m) return 'an IPv6 address must look like [::1]:8000';
    host = m[1];
    port = m[2];
    if (host === '' || !/^[\w:.%-]+$/.test(host) || !host.includes(':')) {
      return `"${host}" is not an IPv6 address`;
    }
  } else {
    const parts = rest.split(':');
    if (parts.length > 2) return 'an IPv6 address must be in brackets, e.g. [::1]:8000';
    host = parts[0] === '' ? '0.0.0.0' : parts[0];
    port = parts[1];
    if (rest === '') return 'the address is empty';
    if (/[\s/[\]]/.test(host)) return `"${host}" is not a host name or address`;
  }
  if (port === undefined) return { kind: 'tcp', host, port: DEFAULT_BIND_PORT };
  if (!/^\d+$/.test(port)) return `"${port}" is not a port number`;
  const n = Number(port);
  if (n > 65535) return `port ${n} is out of range 0..65535`;
  return { kind: 'tcp', host, port: n };
}

/** Parses a bind address that settings validation has already accepted; throws on a bad one. */
export function parseBind(addr: string): BindAddress {
  const r = tryParseBind(addr);
  if (typeof r === 'string') {
    throw new PromforkError('PROMFORK_ERR_INVALID_VALUE', `bind address "${addr}" is invalid: ${r}; use ${BIND_FORMS}`);
  }
  return r;
}
