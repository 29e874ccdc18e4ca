// Hello world for bench/overhead.ts: the smallest app (no imports), so that what a worker costs is promfork's.
// The body names the worker's pid (bench/lib.ts's readiness probe counts the workers that answered).
export default function app(req, res) {
  res.end(`hello from worker ${process.pid}\n`);
}
