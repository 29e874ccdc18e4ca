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
