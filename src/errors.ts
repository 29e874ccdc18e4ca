// One registry of user-facing errors, each with a stable code and the exit status Gunicorn uses for it.
// A PromforkError is a user's mistake: the CLI prints its one-line message, never a stack trace.
// Anything else that escapes is our own bug and is printed with its stack.

export const EXIT_CONFIG = 1;
export const EXIT_WORKER_BOOT = 3;
export const EXIT_APP_LOAD = 4;

const registry = {
  PROMFORK_ERR_UNKNOWN_OPTION: EXIT_CONFIG,
  PROMFORK_ERR_MISSING_VALUE: EXIT_CONFIG,
  PROMFORK_ERR_EXTRA_ARGUMENT: EXIT_CONFIG,
  PROMFORK_ERR_INVALID_VALUE: EXIT_CONFIG,
  PROMFORK_ERR_UNKNOWN_CONFIG_KEY: EXIT_CONFIG,
  PROMFORK_ERR_CONFIG_FILE: EXIT_CONFIG,
  PROMFORK_ERR_NO_APP: EXIT_CONFIG,
  PROMFORK_ERR_WORKER_CLASS: EXIT_CONFIG,
  PROMFORK_ERR_BIND: EXIT_CONFIG,
  PROMFORK_ERR_PIDFILE: EXIT_CONFIG,
  PROMFORK_ERR_ALREADY_RUNNING: EXIT_CONFIG,
  PROMFORK_ERR_LOG_FILE: EXIT_CONFIG,
  PROMFORK_ERR_STORE_UNSAFE: EXIT_CONFIG,
  PROMFORK_ERR_STORE_DIR: EXIT_CONFIG,
  PROMFORK_ERR_REDIS_CONFIG: EXIT_CONFIG,
  PROMFORK_ERR_REDIS_UNREACHABLE: EXIT_CONFIG,
  PROMFORK_ERR_REDIS_AUTH: EXIT_CONFIG,
  PROMFORK_ERR_APP_IMPORT: EXIT_WORKER_BOOT,
  PROMFORK_ERR_APP_EXPORT: EXIT_APP_LOAD,
  PROMFORK_ERR_HOOK_BOOT: EXIT_WORKER_BOOT,
  PROMFORK_ERR_METRICS_SERVER: EXIT_CONFIG,
  PROMFORK_ERR_TLS: EXIT_CONFIG,
  // `promfork top` reading a metrics endpoint: no answer (refused, DNS, timeout, TLS), a non-200 status,
  // a body that is not a promfork exposition (or not for the --namespace given).
  PROMFORK_ERR_SCRAPE_UNREACHABLE: EXIT_CONFIG,
  PROMFORK_ERR_SCRAPE_STATUS: EXIT_CONFIG,
  PROMFORK_ERR_SCRAPE_FORMAT: EXIT_CONFIG,
} as const;

export type ErrorCode = keyof typeof registry;

export class PromforkError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PromforkError';
    this.code = code;
    this.exitCode = registry[code];
  }

  /** The single line shown to the user. */
  toLine(): string {
    return `Error: ${this.message} [${this.code}]`;
  }
}

export function isPromforkError(err: unknown): err is PromforkError {
  return err instanceof PromforkError;
}
