// The public API of promfork for TypeScript users.
export { Arbiter } from './arbiter/arbiter.js';
export { WorkerRecord } from './arbiter/worker-record.js';
export { Worker, type WorkerClass, type WorkerKind, type ArbiterRef } from './workers/base-worker.js';
export { SyncWorker } from './workers/sync-worker.js';
export { AsyncWorker } from './workers/async-worker.js';
export { ThreadWorker } from './workers/thread-worker.js';
export { PromforkError, type ErrorCode } from './errors.js';
export type { Config, Hooks, HookName, Settings, LogLevel } from './config/types.js';
export { VERSION } from './version.js';
// Framework adapters: the route template and a caught error for the endpoint and error_type labels.
export { setRoute, setRequestError } from './adapters/node.js';
export { promforkExpressErrors } from './adapters/express.js';
export { promforkFastify } from './adapters/fastify.js';
export { promforkKoa } from './adapters/koa.js';
export { promforkHono } from './adapters/hono.js';
