import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseBind, tryParseBind } from '../../src/config/bind.js';
import { throwsError } from './helpers.js';

describe('parseBind', () => {
  const good: [string, ReturnType<typeof parseBind>][] = [
    ['127.0.0.1:8000', { kind: 'tcp', host: '127.0.0.1', port: 8000 }],
    ['localhost', { kind: 'tcp', host: 'localhost', port: 8000 }],
    ['example.com:0', { kind: 'tcp', host: 'example.com', port: 0 }],
    [':9000', { kind: 'tcp', host: '0.0.0.0', port: 9000 }],
    ['0.0.0.0:65535', { kind: 'tcp', host: '0.0.0.0', port: 65535 }],
    ['[::1]:8080', { kind: 'tcp', host: '::1', port: 8080 }],
    ['[::]', { kind: 'tcp', host: '::', port: 8000 }],
    ['[fe80::1%eth0]:80', { kind: 'tcp', host: 'fe80::1%eth0', port: 80 }],
    ['tcp://10.0.0.1:81', { kind: 'tcp', host: '10.0.0.1', port: 81 }],
    ['unix:/tmp/app.sock', { kind: 'unix', path: '/tmp/app.sock' }],
    ['unix://run/app.sock', { kind: 'unix', path: 'run/app.sock' }],
  ];
  for (const [addr, expected] of good) it(addr, () => assert.deepEqual(parseBind(addr), expected));

  const bad: [string, string][] = [
    ['', 'the address is empty'],
    ['host:65536', 'port 65536 is out of range 0..65535'],
    ['host:-1', '"-1" is not a port number'],
    ['host:', '"" is not a port number'],
    ['::1', 'an IPv6 address must be in brackets, e.g. [::1]:8000'],
    ['[::1', 'an IPv6 address must look like [::1]:8000'],
    ['[::1]x', 'an IPv6 address must look like [::1]:8000'],
    ['[127.0.0.1]:80', '"127.0.0.1" is not an IPv6 address'],
    ['unix:', 'the unix socket path is empty'],
    ['a b:80', '"a b" is not a host name or address'],
  ];
  for (const [addr, reason] of bad) {
    it(`rejects ${JSON.stringify(addr)}`, () => {
      assert.equal(tryParseBind(addr), reason);
      throwsError(() => parseBind(addr), 'PROMFORK_ERR_INVALID_VALUE',
        `bind address ${JSON.stringify(addr)} is invalid: ${reason}; use HOST:PORT, HOST, [IPV6]:PORT or unix:PATH`);
    });
  }
});
