// Runs a fetch-style app (Hono and others: `fetch(Request) => Response`) as a Node request listener.
// Bodies stream both ways: nothing is buffered whole. The second argument (Hono's `c.env`) carries the Node
// request and response as @hono/node-server does, so middleware such as promforkHono() can reach them.

import { Readable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The env a fetch app receives: the same shape as @hono/node-server's `HttpBindings`. */
export interface NodeBindings {
  incoming: IncomingMessage;
  outgoing: ServerResponse;
}

export interface FetchApp {
  fetch(request: Request, env: NodeBindings): Response | Promise<Response>;
}

export function fetchToListener(app: FetchApp) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const response = await app.fetch(toRequest(req, res), { incoming: req, outgoing: res });
    await writeResponse(response, res);
  };
}

function toRequest(req: IncomingMessage, res: ServerResponse): Request {
  const url = `http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`;
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  const init: RequestInit & { duplex?: 'half' } = { method: req.method, headers, signal: controller.signal };
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    init.body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
    init.duplex = 'half';
  }
  return new Request(url, init);
}

async function writeResponse(response: Response, res: ServerResponse): Promise<void> {
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  const cookies = response.headers.getSetCookie();
  for (const [name, value] of response.headers) {
    if (name !== 'set-cookie') res.setHeader(name, value);
  }
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
  if (!response.body) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  res.once('close', () => {
    if (!res.writableFinished) reader.cancel().catch(() => {});
  });
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!res.write(value)) {
      await new Promise<void>((resolve) => {
        const finish = () => {
          res.off('drain', finish);
          res.off('close', finish);
          resolve();
        };
        res.on('drain', finish);
        res.on('close', finish);
      });
      if (res.destroyed) return;
    }
  }
  res.end();
}
