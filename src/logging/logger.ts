// The error log (and the access log's output), Gunicorn style. Used by the primary and by every worker.
// Every record is written with one synchronous write(2) on an O_APPEND fd, so a record is never lost when the
// process dies right after logging, and records from several processes sharing one file do not interleave.

import fs from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import type { LogLevel } from '../config/types.js';
import { PromforkError } from '../errors.js';

export interface LoggerOptions {
  /** '-' = stderr, a path = append to that file, null = discard (tests, `nullLogger`). */
  errorlog: string | null;
  loglevel: LogLevel;
  /** '-' = stdout, a path = append to that file, null = no access log. */
  accesslog: string | null;
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warning: 30, error: 40, critical: 50 };

interface Sink {
  fd: number;
  /** Absolute path of an owned file, or null for stdout/stderr (never closed or reopened). */
  file: string | null;
  option: string;
}

/** `+0530` style offset of the local time zone at `date`. */
export function utcOffset(date: Date): string {
  const minutes = -date.getTimezoneOffset();
  const abs = Math.abs(minutes);
  return `${minutes < 0 ? '-' : '+'}${pad2(Math.floor(abs / 60))}${pad2(abs % 60)}`;
}

/** Gunicorn's error-log timestamp: `[2024-01-31 13:55:36 +0000]`, local time. */
export function formatLogTime(date: Date): string {
  return (
    `[${date.getFullYear()}-${pad2(date.getMonth() + 1)}-${pad2(date.getDate())} ` +
    `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())} ${utcOffset(date)}]`
  );
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** Text appended after the message: an Error's stack (with cause and extra fields) on the next lines, else `: value`. */
function describe(err: unknown): string {
  if (err === undefined) return '';
  try {
    if (err instanceof Error) return `\n${inspect(err, { depth: 4, colors: false })}`;
    return `: ${String(err)}`;
  } catch {
    return `: ${inspect(err)}`; // String() throws for e.g. Object.create(null)
  }
}

function openSink(target: string | null, stdFd: number, option: string, stdName: string): Sink | null {
  if (target === null) return null;
  if (target === '-') return { fd: stdFd, file: null, option };
  // Absolute, so a later chdir does not move the file on reopen().
  const file = path.resolve(target);
  try {
    return { fd: fs.openSync(file, 'a'), file, option };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new PromforkError(
      'PROMFORK_ERR_LOG_FILE',
      `${option}: cannot open '${file}' for appending (${code}). ` +
        `Create the directory and make it writable, or use '-' for ${stdName}`,
      { cause: err },
    );
  }
}

function closeSink(sink: Sink | null): void {
  if (sink?.file == null) return;
  try {
    fs.closeSync(sink.fd);
  } catch {
    // already closed: nothing to do
  }
}

// A non-blocking stdout/stderr pipe can refuse a write (EAGAIN); wait a little instead of dropping the line.
const waitCell = new Int32Array(new SharedArrayBuffer(4));
const EAGAIN_RETRIES = 100;

export class Logger {
  /** Writes that failed after start (EPIPE, ENOSPC, ...). They are counted, never thrown. */
  writeErrors = 0;
  private level = LEVELS.info;
  private errorSink: Sink | null = null;
  private accessSink: Sink | null = null;
  private closed = false;

  constructor(opts: LoggerOptions) {
    this.setup(opts);
  }

  /** (Re)configure from settings, e.g. on HUP. If a new file cannot be opened this throws and the old setup stays. */
  setup(opts: LoggerOptions): void {
    const errorSink = openSink(opts.errorlog, 2, '--error-logfile', 'stderr');
    let accessSink: Sink | null;
    try {
      accessSink = openSink(opts.accesslog, 1, '--access-logfile', 'stdout');
    } catch (err) {
      closeSink(errorSink);
      throw err;
    }
    closeSink(this.errorSink);
    closeSink(this.accessSink);
    this.errorSink = errorSink;
    this.accessSink = accessSink;
    this.level = LEVELS[opts.loglevel];
    this.closed = false;
  }

  isEnabledFor(level: LogLevel): boolean {
    return LEVELS[level] >= this.level;
  }

  /** True when an access log is configured (lets a worker skip formatting otherwise). */
  get accessEnabled(): boolean {
    return this.accessSink !== null && !this.closed;
  }

  log(level: LogLevel, msg: string, err?: unknown): void {
    if (this.errorSink === null || this.closed || !this.isEnabledFor(level)) return;
    const line = `${formatLogTime(new Date())} [${process.pid}] [${level.toUpperCase()}] ${msg}${describe(err)}\n`;
    this.write(this.errorSink, line);
  }

  debug(msg: string, err?: unknown): void {
    this.log('debug', msg, err);
  }

  info(msg: string, err?: unknown): void {
    this.log('info', msg, err);
  }

  warning(msg: string, err?: unknown): void {
    this.log('warning', msg, err);
  }

  error(msg: string, err?: unknown): void {
    this.log('error', msg, err);
  }

  critical(msg: string, err?: unknown): void {
    this.log('critical', msg, err);
  }

  /** An ERROR record with the error's details, like Python's `logger.exception`. */
  exception(msg: string, err: unknown): void {
    this.log('error', msg, err);
  }

  /** One formatted access-log line (without the newline). Not subject to `loglevel`, as in Gunicorn. */
  access(line: string): void {
    if (this.accessSink === null || this.closed) return;
    this.write(this.accessSink, `${line}\n`);
  }

  /** USR1: reopen the log files by path (after log rotation). stdout/stderr are left alone. Never throws. */
  reopen(): void {
    if (this.closed) return;
    for (const key of ['errorSink', 'accessSink'] as const) {
      const old = this[key];
      if (old?.file == null) continue;
      try {
        this[key] = { ...old, fd: fs.openSync(old.file, 'a') };
        closeSink(old);
      } catch (err) {
        // Keep writing to the old fd rather than losing lines.
        this.error(`Cannot reopen ${old.option} '${old.file}', still writing to the old file`, (err as Error).message);
      }
    }
  }

  /** Close owned files. Later records are dropped. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    closeSink(this.errorSink);
    closeSink(this.accessSink);
  }

  private write(sink: Sink, text: string): void {
    const buf = Buffer.from(text, 'utf8');
    let offset = 0;
    let retries = 0;
    try {
      while (offset < buf.length) {
        try {
          offset += fs.writeSync(sink.fd, buf, offset);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++retries > EAGAIN_RETRIES) throw err;
          Atomics.wait(waitCell, 0, 0, 1);
        }
      }
    } catch {
      this.writeErrors++;
    }
  }
}

/** A Logger that discards everything (for tests and defaults). */
export function createNullLogger(loglevel: LogLevel = 'info'): Logger {
  return new Logger({ errorlog: null, accesslog: null, loglevel });
}

export const nullLogger: Logger = createNullLogger();
