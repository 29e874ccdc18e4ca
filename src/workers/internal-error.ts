// What a client gets when the app's handler threw or rejected: a plain 500 that closes the connection, or, when
// the response had already begun, a cut connection (a truncated body must not look complete).

import type { ServerResponse } from 'node:http';

export function answerInternalError(res: ServerResponse): void {
  if (!res.headersSent) {
    res.statusCode = 500;
    res.shouldKeepAlive = false;
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.end('Internal Server Error\n');
  } else if (!res.writableEnded) {
    res.destroy();
  }
}
