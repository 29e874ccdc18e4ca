// A plain node:http app for promfork: `promfork examples/plain.js --workers 2`.
// Routes: / (hello), /users/:id (JSON), /slow?ms=N (waits), /error (throws), /status/:code.

export default function app(req, res) {
  const url = new URL(req.url, 'http://localhost');
  const users = /^\/users\/(\d+)$/.exec(url.pathname);
  if (url.pathname === '/') {
    res.setHeader('content-type', 'text/plain');
    res.end(`hello from worker ${process.pid}\n`);
  } else if (users) {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ id: Number(users[1]), name: `user ${users[1]}` }));
  } else if (url.pathname === '/slow') {
    const ms = Math.min(Number(url.searchParams.get('ms') ?? 100), 60_000);
    setTimeout(() => res.end(`slept ${ms} ms\n`), ms);
  } else if (url.pathname === '/error') {
    throw new Error('this route always fails');
  } else if (url.pathname.startsWith('/status/')) {
    res.statusCode = Number(url.pathname.slice('/status/'.length)) || 500;
    res.end(`status ${res.statusCode}\n`);
  } else {
    res.statusCode = 404;
    res.end('not found\n');
  }
}
