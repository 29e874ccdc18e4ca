// Entry point of a worker process (forked by the primary). Its first module holds SIGUSR1 (no inspector, at any
// moment: ../early-signals.ts); the worker itself (./worker-main.ts) is loaded afterwards.

import '../early-signals.js';

await import('./worker-main.js');
