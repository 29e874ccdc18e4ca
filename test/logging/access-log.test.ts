import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  compileAccessLog,
  DEFAULT_ACCESS_LOG_FORMAT,
  formatAccessLog,
  type AccessInfo,
} from '../../src/logging/index.js';

type Respond = (req: http.IncomingMessage, res: http.ServerResponse) => void;
type Render<T> = (req: http.IncomingMessage, res: http.ServerResponse) => T;

let server: http.Server;
let port = 0;
let pending: { respond: Respond; render: Render<unknown>; done: (v: unknown, err?: unknown) => void } | null = null;

before(async () => {
  server = http.createServer((req, res) => {
    const p = pending;
    if (p === null) {
      res.statusCode = 500;
      res.end();
      return;
    }
    // Render when the response is finished, as a worker's access log does.
    res.on('finish', () => {
      try {
        p.done(p.render(req, res));
      } catch (err) {
        p.done(undefined, err);
      }
    });
    p.respond(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** One real request; resolves with what `render` returned for the server-side req/res. */
async function exchange<T>(
  opts: { path: string; method?: string; headers?: http.OutgoingHttpHeaders },
  respond: Respond,
  render: Render<T>,
): Promise<T> {
  let rendered: { value: T } | { error: unknown } | undefined;
  const renderedP = new Promise<void>((resolve) => {
    pending = {
      respond,
      render,
      done: (v, err) => {
        rendered = err === undefined ? { value: v as T } : { error: err };
        resolve();
      },
    };
  });
  const responded = new Promise<void>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, agent: false, ...opts }, (res) => {
      res.resume();
      res.on('end', resolve);
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  try {
    await Promise.all([responded, renderedP]);
  } finally {
    pending = null;
  }
  if (rendered === undefined) throw new Error('not rendered');
  if ('error' in rendered) throw rendered.error;
  return rendered.value;
}

function withTZ<T>(tz: string, fn: () => T): T {
  const old = process.env.TZ;
  process.env.TZ = tz;
  try {
    return fn();
  } finally {
    if (old === undefined) delete process.env.TZ;
    else process.env.TZ = old;
  }
}

// 13:55:36 in Los Angeles (PDT, -0700) on 10 Oct 2000: Gunicorn's documented example.
const START = new Date('2000-10-10T20:55:36Z');

function info(req: http.IncomingMessage, res: http.ServerResponse, extra: Partial<AccessInfo> = {}): AccessInfo {
  return { req, res, startTime: START, durationNs: 2_345_678_901n, bytesSent: 5, pid: 4242, ...extra };
}

/** Format each of `formats` for the same request. */
function renderAll(formats: string[], extra?: Partial<AccessInfo>): Render<Record<string, string>> {
  return (req, res) =>
    Object.fromEntries(formats.map((f) => [f, withTZ('America/Los_Angeles', () => formatAccessLog(f, info(req, res, extra)))]));
}

const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;

const fullRequest = {
  path: '/p%20a/th?x=1&y=2',
  headers: {
    Referer: 'http://example.com/from',
    'User-Agent': 'test-agent/1.0',
    Authorization: basic('alice:s3cret:x'),
    'X-Request-Id': 'req-42',
  },
};

const fullResponse: Respond = (_req, res) => {
  res.statusCode = 201;
  res.setHeader('X-Trace', 'abc');
  res.setHeader('Set-Cookie', ['a=1', 'b=2']);
  res.end('hello');
};

describe('access log atoms', () => {
  test('every single-letter atom', async () => {
    const expected: Record<string, string> = {
      '%(h)s': '127.0.0.1',
      '%(l)s': '-',
      '%(u)s': 'alice',
      '%(t)s': '[10/Oct/2000:13:55:36 -0700]',
      '%(r)s': 'GET /p%20a/th?x=1&y=2 HTTP/1.1',
      '%(m)s': 'GET',
      '%(U)s': '/p a/th',
      '%(q)s': 'x=1&y=2',
      '%(H)s': 'HTTP/1.1',
      '%(s)s': '201',
      '%(B)s': '5',
      '%(b)s': '5',
      '%(f)s': 'http://example.com/from',
      '%(a)s': 'test-agent/1.0',
      '%(T)s': '2',
      '%(M)s': '2345',
      '%(D)s': '2345678',
      '%(L)s': '2.345678',
      '%(p)s': '<4242>',
    };
    const got = await exchange(fullRequest, fullResponse, renderAll(Object.keys(expected)));
    assert.deepEqual(got, expected);
  });

  test('t uses the local zone with its numeric offset', async () => {
    const got = await exchange({ path: '/' }, (_q, res) => res.end(), (req, res) => {
      const f = compileAccessLog('%(t)s');
      return ['UTC', 'Asia/Kolkata', 'America/Los_Angeles'].map((tz) => withTZ(tz, () => f(info(req, res))));
    });
    assert.deepEqual(got, ['[10/Oct/2000:20:55:36 +0000]', '[11/Oct/2000:02:25:36 +0530]', '[10/Oct/2000:13:55:36 -0700]']);
  });

  test('b is "-" and B is 0 when no body was sent; q is empty without a query', async () => {
    const got = await exchange({ path: '/empty', method: 'HEAD' }, (_q, res) => {
      res.statusCode = 204;
      res.end();
    }, renderAll(['%(b)s|%(B)s|%(q)s|%(U)s|%(m)s|%(s)s|%(u)s|%(f)s|%(a)s'], { bytesSent: 0 }));
    assert.deepEqual(Object.values(got), ['-|0||/empty|HEAD|204|-|-|-']);
  });

  test('request times from bigint and number nanoseconds', async () => {
    const got = await exchange({ path: '/' }, (_q, res) => res.end(), (req, res) => {
      const f = compileAccessLog('%(T)s %(M)s %(D)s %(L)s');
      return [0n, 999n, 1_000_000_000n, 1_500_000, 61_000_123_456, -5].map((durationNs) =>
        f(info(req, res, { durationNs })),
      );
    });
    assert.deepEqual(got, [
      '0 0 0 0.000000',
      '0 0 0 0.000000',
      '1 1000 1000000 1.000000',
      '0 1 1500 0.001500',
      '61 61000 61000123 61.000123',
      '0 0 0 0.000000',
    ]);
  });

  test('request, response and environment header atoms', async () => {
    process.env.PROMFORK_TEST_VAR = 'v1';
    try {
      const formats = {
        '%({x-request-id}i)s': 'req-42',
        '%({X-Request-ID}i)s': 'req-42',
        '%({X-REQUEST-ID}I)s': 'req-42',
        '%({missing}i)s': '-',
        '%({x-trace}o)s': 'abc',
        '%({X-Trace}o)s': 'abc',
        '%({set-cookie}o)s': 'a=1, b=2',
        '%({content-length}o)s': '5',
        '%({content-type}o)s': '-',
        '%({PROMFORK_TEST_VAR}e)s': 'v1',
        '%({promfork_test_var}e)s': 'v1',
        '%({PROMFORK_NO_SUCH_VAR}e)s': '-',
      };
      const got = await exchange(fullRequest, fullResponse, renderAll(Object.keys(formats)));
      assert.deepEqual(got, formats);
    } finally {
      delete process.env.PROMFORK_TEST_VAR;
    }
  });

  test('response headers given only to writeHead() are found', async () => {
    const got = await exchange({ path: '/w' }, (_q, res) => {
      res.writeHead(202, { 'X-Only': 'w' });
      res.end();
    }, renderAll(['%(s)s %({x-only}o)s %({x-absent}o)s %(b)s'], { bytesSent: 0 }));
    assert.deepEqual(Object.values(got), ['202 w - -']);
  });

  test('the date header Node adds is a response header', async () => {
    const got = await exchange({ path: '/' }, (_q, res) => res.end(), renderAll(['%({date}o)s']));
    assert.match(Object.values(got)[0], /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  });

  test('%% is a literal percent, unknown atoms are "-", single letters are case-sensitive', async () => {
    const got = await exchange(fullRequest, fullResponse, renderAll([
      '100%% %(s)s',
      '%%(h)s',
      '%(zz)s|%(Z)s|%(S)s|%({x}z)s|%()s|%(constructor)s|%(toString)s',
      '%(h)s %(H)s',
      'trailing % and %(h)x stay literal',
    ]));
    assert.deepEqual(Object.values(got), [
      '100% 201',
      '%(h)s',
      '-|-|-|-|-|-|-',
      '127.0.0.1 HTTP/1.1',
      'trailing % and %(h)x stay literal',
    ]);
  });

  test('width, left-justify, zero-pad and precision as in Python', async () => {
    const got = await exchange(fullRequest, fullResponse, renderAll(['[%(m)-6s][%(s)5s][%(B)05d][%(a).4s][%(T)d]']));
    assert.deepEqual(Object.values(got), ['[GET   ][  201][00005][test][2]']);
  });

  test('basic-auth user: missing, other scheme, bad base64, empty user', async () => {
    const cases: [string | undefined, string][] = [
      [undefined, '-'],
      ['Bearer abc.def', '-'],
      ['Basic !!!notbase64', '-'],
      ['Basic', '-'],
      [basic(':pw'), '-'],
      [basic('bob'), 'bob'],
      [`basic ${Buffer.from('carol:x').toString('base64')}`, 'carol'],
    ];
    for (const [authorization, user] of cases) {
      const headers = authorization === undefined ? {} : { Authorization: authorization };
      const got = await exchange({ path: '/', headers }, (_q, res) => res.end(), renderAll(['%(u)s']));
      assert.equal(Object.values(got)[0], user, `Authorization: ${authorization}`);
    }
  });

  test('absolute-form request target: U and q come from its path', async () => {
    const got = await exchange({ path: 'http://example.com/x/y?z=1' }, (_q, res) => res.end(),
      renderAll(['%(r)s|%(U)s|%(q)s']));
    assert.deepEqual(Object.values(got), ['GET http://example.com/x/y?z=1 HTTP/1.1|/x/y|z=1']);
  });

  test('quotes and newlines are escaped so one request stays one line', async () => {
    const got = await exchange(
      { path: '/a%0Ab"c?k="v"', headers: { 'User-Agent': 'say "hi"', 'X-Q': '"q"' } },
      (_q, res) => res.end(),
      renderAll(['%(r)s|%(U)s|%(q)s|%(a)s|%({x-q}i)s']),
    );
    assert.deepEqual(Object.values(got), [
      'GET /a%0Ab\\"c?k=\\"v\\" HTTP/1.1|/a\\nb\\"c|k=\\"v\\"|say \\"hi\\"|\\"q\\"',
    ]);
  });

  test('the default format gives the exact combined-log line', async () => {
    const lines = await exchange(
      { path: '/index.html?a=b', headers: { Referer: 'http://ref.example/', 'User-Agent': 'curl/8.0' } },
      (_q, res) => res.end('hello'),
      (req, res) => [
        formatAccessLog(DEFAULT_ACCESS_LOG_FORMAT, info(req, res, { startTime: new Date() })),
        formatAccessLog(DEFAULT_ACCESS_LOG_FORMAT, info(req, res, { startTime: new Date(), bytesSent: 0 })),
      ],
    );
    const stamp = /\[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]/;
    const expected = [
      '127.0.0.1 - - [T] "GET /index.html?a=b HTTP/1.1" 200 5 "http://ref.example/" "curl/8.0"',
      '127.0.0.1 - - [T] "GET /index.html?a=b HTTP/1.1" 200 - "http://ref.example/" "curl/8.0"',
    ];
    for (const [i, line] of lines.entries()) {
      assert.match(line, stamp);
      assert.equal(line.replace(stamp, '[T]'), expected[i]);
    }
  });

  test('a compiled format is cached by its string', () => {
    assert.equal(compileAccessLog('%(h)s x'), compileAccessLog('%(h)s x'));
    assert.notEqual(compileAccessLog('%(h)s x'), compileAccessLog('%(h)s y'));
  });
});
