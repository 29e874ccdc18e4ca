// A plain node:http app for promfork: `npx promfork examples/plain.js --workers 2`.
// Routes: / (hello), /users/:id (JSON), /orders/:orderId (JSON; ids >= 40 fail with UpstreamTimeoutError),
// /health/:component (503 for "db"), /slow?ms=N (waits), /error (throws), /status/:code.
// setRoute() gives each failure its route template as the `endpoint` label; setRequestError() names the
// error_type of an error the app answered itself.

import { setRequestError, setRoute } from 'promfork';

export class UpstreamTimeoutError extends Error {}

/** A stand-in for a call to another service: it times out for order ids >= 40. */
async function findOrder(id) {
  if (id >= 40) throw new UpstreamTimeoutError(`order service timed out for order ${id}`);
  return { id, total: id * 10 };
}

function json(res, status, body) {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
}

export default function app(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const path = url.pathname;
  let m;
  if (path === '/') {
    res.setHeader('content-type', 'text/plain');
    res.end(`hello from worker ${process.pid}\n`);
  } else if ((m = /^\/users\/(\d+)$/.exec(path))) {
    setRoute(req, '/users/:id');
    json(res, 200, { id: Number(m[1]), name: `user ${m[1]}` });
  } else if ((m = /^\/orders\/(\d+)$/.exec(path))) {
    setRoute(req, '/orders/:orderId');
    // The app answers its own failure with a JSON 500, so it hands the error to promfork.
    return findOrder(Number(m[1])).then(
      (order) => json(res, 200, order),
      (err) => {
        setRequestError(req, err);
        json(res, 500, { error: err.message });
      },
    );
  } else if ((m = /^\/health\/([^/]+)$/.exec(path))) {
    setRoute(req, '/health/:component');
    if (m[1] === 'db') json(res, 503, { component: m[1], status: 'down' });
    else json(res, 200, { component: m[1], status: 'up' });
  } else if (path === '/slow') {
    setRoute(req, '/slow');
    const ms = Math.min(Number(url.searchParams.get('ms') ?? 100), 60_000);
    setTimeout(() => res.end(`slept ${ms} ms\n`), ms);
  } else if (path === '/error') {
    setRoute(req, '/error');
    throw new Error('this route always fails'); // promfork answers 500 and counts the error itself
  } else if (path.startsWith('/status/')) {
    setRoute(req, '/status/:code');
    res.statusCode = Number(path.slice('/status/'.length)) || 500;
    res.end(`status ${res.statusCode}\n`);
  } else {
    res.statusCode = 404;
    res.end('not found\n');
  }
}
