// Loads the app named by MODULE[:EXPORT] and turns it into a Node request listener.
// A missing module is a worker boot error (exit 3); a module without a usable export is an
// app load error (exit 4), as Gunicorn's ImportError vs AppImportError.

import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PromforkError } from '../errors.js';
import { fetchToListener, type FetchApp } from './fetch-adapter.js';

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => unknown;

export interface AppSpec {
  module: string;
  exportName: string | null;
}

export function parseAppSpec(spec: string): AppSpec {
  const colon = spec.lastIndexOf(':');
  // "C:" style prefixes do not exist on POSIX; a colon followed by a path separator is part of the path.
  if (colon > 0 && !/[/\\]/.test(spec.slice(colon + 1))) {
    const exportName = spec.slice(colon + 1);
    return { module: spec.slice(0, colon), exportName: exportName === '' ? null : exportName };
  }
  return { module: spec, exportName: null };
}

export function resolveAppModule(moduleName: string, cwd: string): string {
  const candidates = [moduleName, `${moduleName}.js`, `${moduleName}.mjs`, `${moduleName}.cjs`];
  for (const candidate of candidates) {
    const full = path.resolve(cwd, candidate);
    if (existsSync(full) && statSync(full).isFile()) return full;
  }
  const looksLikePath = /^[./]/.test(moduleName) || /\.[cm]?[jt]s$/.test(moduleName);
  if (!looksLikePath) {
    try {
      return createRequire(path.join(cwd, 'noop.js')).resolve(moduleName);
    } catch {
      // fall through to the error below
    }
  }
  throw new PromforkError(
    'PROMFORK_ERR_APP_IMPORT',
    `app module "${moduleName}" not found (looked in ${cwd}). Give the app as MODULE[:EXPORT], e.g. "app.js:app", relative to --chdir`,
  );
}

export async function loadApp(spec: string, cwd: string): Promise<RequestListener> {
  const { module, exportName } = parseAppSpec(spec);
  const file = resolveAppModule(module, cwd);
  let ns: Record<string, unknown>;
  try {
    ns = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    const source = err instanceof SyntaxError ? syntaxErrorSource(err, file) : null;
    const at = source ? ` (${source.where})` : '';
    throw new PromforkError('PROMFORK_ERR_APP_IMPORT', `app module ${file} failed to load: ${firstLine(err)}${at}`, {
      // A syntax error's stack is Node's loader only: its place in the app's source replaces it.
      cause: source ? new AppSourceError(source.excerpt) : err,
    });
  }
  const [name, exported] = pickExport(ns, exportName, file);
  let value = exported;
  // A promise of the app: CommonJS cannot await at top level (`module.exports = app.ready().then(...)`).
  if (typeof (exported as { then?: unknown }).then === 'function') {
    try {
      value = await exported;
    } catch (err) {
      throw new PromforkError('PROMFORK_ERR_APP_IMPORT', `export "${name}" of ${file} is a promise that rejected: ${firstLine(err)}`, {
        cause: err,
      });
    }
  }
  const listener = await toListener(value);
  if (!listener) {
    throw new PromforkError(
      'PROMFORK_ERR_APP_EXPORT',
      `export "${name}" of ${file} is not an app: export a request listener (req, res) => void, a Koa app, or an object with fetch(request)`,
    );
  }
  return listener;
}

function pickExport(ns: Record<string, unknown>, exportName: string | null, file: string): [string, unknown] {
  const names = exportName ? [exportName] : ['default', 'app'];
  for (const name of names) {
    const value = ns[name];
    if (value !== undefined && value !== null) return [name, value];
  }
  const available = Object.keys(ns).filter((k) => k !== '__esModule' && k !== 'module.exports');
  throw new PromforkError(
    'PROMFORK_ERR_APP_EXPORT',
    `${file} has no export ${names.map((n) => `"${n}"`).join(' or ')} (it exports: ${available.join(', ') || 'nothing'}). Name the export: "${path.basename(file)}:NAME"`,
  );
}

async function toListener(value: unknown): Promise<RequestListener | null> {
  if (typeof value === 'function') return value as RequestListener;
  if (typeof value !== 'object' || value === null) return null;
  const app = value as Record<string, unknown>;
  if (typeof app.fetch === 'function') return fetchToListener(app as unknown as FetchApp);
  // Koa: the listener is app.callback().
  if (typeof app.callback === 'function' && typeof app.use === 'function') {
    return (app.callback as () => RequestListener)();
  }
  return null;
}

/** The app's own source at a syntax error (`FILE:LINE`, the line, the caret), shown instead of a stack. */
export class AppSourceError extends Error {
  constructor(readonly excerpt: string) {
    super(excerpt);
    this.name = 'AppSourceError';
  }
}

const SOURCE_HEADER = /^(\S.*:\d+)\n(.*)\n( *\^+ *)\n/;

/**
 * Where a syntax error is, as Node prints it for an uncaught one: `FILE:LINE`, the source line and a caret.
 * CommonJS puts it at the head of the stack; for an ES module Node keeps it internal, so the app file is compiled
 * once more with `node --check`, which prints it (a syntax error in a module the app imports is not located).
 */
function syntaxErrorSource(err: SyntaxError, file: string): { where: string; excerpt: string } | null {
  let m = SOURCE_HEADER.exec(err.stack ?? '');
  if (!m) {
    const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10_000 });
    m = SOURCE_HEADER.exec(check.stderr ?? '');
  }
  if (!m) return null;
  const where = m[1]!.replace(/^file:\/\//, '');
  return { where, excerpt: `${where}\n${m[2]}\n${m[3]!.trimEnd()}` };
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0] ?? text;
}
