// Loading one config file: .js/.mjs/.cjs are run as code, .json/.yaml/.yml are read as data.
//
// A JS file may `export default { ... }`, export each setting or hook by name (like gunicorn.conf.py),
// or both: the default object is applied first and named exports override it. A key set to
// `undefined` counts as not set. Hooks are functions; in any format a hook may also be a string
// "MODULE:EXPORT" (EXPORT defaults to the hook's name), MODULE being relative to the config file's
// directory or a package name. The file itself is re-run on every load (HUP sees new content);
// modules it imports are cached by Node as usual.

import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import YAML from 'yaml';
import { PromforkError } from '../errors.js';
import { HOOK_NAMES, type HookName, type Hooks, type Settings, type SettingKey } from './types.js';
import { SETTINGS_BY_KEY } from './settings.js';
import { closest } from './suggest.js';
import { describe, fromValue, invalidValue } from './validate.js';
import { isPythonExporterLayout, readPythonExporterLayout, type PythonExporterLayout } from './python-exporter-yaml.js';

export interface LoadedConfigFile {
  /** Absolute path of the file. */
  path: string;
  settings: Partial<Settings>;
  hooks: Hooks;
  /** The `exporter` section of a file in the Python Gunicorn Prometheus Exporter's layout: environment defaults. */
  pythonLayout?: PythonExporterLayout;
}

export const CONFIG_EXTENSIONS = ['.js', '.mjs', '.cjs', '.json', '.yaml', '.yml'] as const;

const requireHere = createRequire(import.meta.url);
let loadCount = 0;

const KEY_SUGGESTIONS = new Map<string, string>(
  [...SETTINGS_BY_KEY.keys(), ...HOOK_NAMES, 'wsgi_app:app'].map((k) => {
    const [name, key = name] = k.split(':');
    return [name, key];
  }),
);

function firstLine(s: string): string {
  return s.split('\n', 1)[0].trim();
}

function fileError(file: string, detail: string, cause?: unknown): PromforkError {
  return new PromforkError('PROMFORK_ERR_CONFIG_FILE', `cannot load config file ${file}: ${detail}`, { cause });
}

function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${firstLine(err.message)}`;
  return `threw ${describe(err)}`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Where in `file` a JS error happened, as "file:line[:col]", when Node tells us. */
function jsLocation(err: unknown, file: string): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const stack = err.stack ?? '';
  // CommonJS syntax errors start their stack with "/path/file.cjs:LINE".
  const head = /^(.+):(\d+)\n/.exec(stack);
  if (err.name === 'SyntaxError' && head) return `${head[1]}:${head[2]}`;
  const frame = new RegExp(`(?:file://)?${escapeRegExp(file)}(?:\\?[^:\\s)]*)?:(\\d+):(\\d+)`).exec(stack);
  if (frame) return `${file}:${frame[1]}:${frame[2]}`;
  if (err.name === 'SyntaxError') {
    // Node 20 gives ES-module syntax errors no location; `node --check` prints it.
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', env, timeout: 10_000 });
    const at = /^(.+):(\d+)\n/.exec(check.stderr ?? '');
    if (at && check.stderr.includes(firstLine(err.message))) return `${at[1]}:${at[2]}`;
  }
  return undefined;
}

function jsError(file: string, err: unknown): PromforkError {
  const where = jsLocation(err, file);
  if (err instanceof Error && err.name === 'SyntaxError' && where) {
    return fileError(file, `SyntaxError at ${where}: ${firstLine(err.message)}`, err);
  }
  return fileError(file, errorText(err) + (where ? ` (at ${where})` : ''), err);
}

async function runJs(file: string, ext: string): Promise<Record<string, unknown>> {
  // Drop a cached CommonJS instance: both require() and import() of a CJS file reuse require.cache.
  delete requireHere.cache[file];
  try {
    if (ext === '.cjs') return { default: requireHere(file) as unknown };
    // A new query string makes a new ES module instance, so the file runs again.
    return (await import(`${pathToFileURL(file).href}?promfork-load=${++loadCount}`)) as Record<string, unknown>;
  } catch (err) {
    throw jsError(file, err);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// Interop artefacts of CommonJS and transpilers, never settings.
const ARTEFACTS = new Set(['default', '__esModule', 'module.exports']);

/** The settings a module exports: its default object first (unwrapping a transpiled one), then named exports. */
function exportsOf(file: string, ns: Record<string, unknown>, out = new Map<string, unknown>(), depth = 0): Map<string, unknown> {
  const def = ns.default;
  if (def !== undefined && depth < 2) {
    if (!isRecord(def)) {
      throw fileError(file, `the default export must be an object of settings, got ${describe(def)}`);
    }
    exportsOf(file, def, out, depth + 1);
  }
  for (const [k, v] of Object.entries(ns)) if (!ARTEFACTS.has(k)) out.set(k, v);
  return out;
}

/** JSON.parse's error position as line:col, across V8's message styles. */
function jsonLocation(text: string, message: string): string {
  const lc = /line (\d+) column (\d+)/.exec(message);
  if (lc) return `${lc[1]}:${lc[2]}`;
  const pos = /at position (\d+)/.exec(message);
  const offset = pos ? Number(pos[1]) : text.length;
  const before = text.slice(0, offset).split('\n');
  return `${before.length}:${before[before.length - 1].length + 1}`;
}

function readData(file: string, ext: string): Record<string, unknown> {
  const text = readFileSync(file, 'utf8');
  let data: unknown;
  try {
    data = ext === '.json' ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    const e = err as Error & { linePos?: { line: number; col: number }[] };
    let at: string;
    let message = firstLine(e.message);
    if (ext === '.json') {
      at = jsonLocation(text, message);
      message = message.replace(/ in JSON at position \d+.*$/, '').replace(/ \(line \d+ column \d+\)$/, '');
    } else {
      at = e.linePos?.[0] ? `${e.linePos[0].line}:${e.linePos[0].col}` : '1';
      message = message.replace(/ at line \d+, column \d+:?$/, '');
    }
    throw fileError(file, `SyntaxError at ${file}:${at}: ${message}`, err);
  }
  if (data === null || data === undefined) return {}; // an empty YAML file sets nothing
  if (!isRecord(data)) throw fileError(file, `the top level must be a mapping of settings, got ${describe(data)}`);
  return data;
}

async function resolveHook(file: string, name: HookName, spec: string): Promise<Hooks[HookName]> {
  const colon = spec.lastIndexOf(':');
  const mod = colon < 0 ? spec : spec.slice(0, colon);
  const exp = colon < 0 ? name : spec.slice(colon + 1);
  const what = `hook \`${name}\` in ${file}`;
  if (mod === '' || exp === '') {
    throw invalidValue(what, { type: 'string', expects: 'a function or "MODULE:EXPORT"' }, spec);
  }
  let ns: Record<string, unknown>;
  try {
    const target = mod.startsWith('.') || path.isAbsolute(mod)
      ? path.resolve(path.dirname(file), mod)
      : createRequire(file).resolve(mod); // a package name, resolved from the config file's directory
    ns = (await import(pathToFileURL(target).href)) as Record<string, unknown>;
  } catch (err) {
    throw fileError(file, `hook \`${name}\` module "${mod}": ${errorText(err)}`, err);
  }
  // A CommonJS module's exports that Node could not detect as named are still on its default.
  const fn = ns[exp] ?? (isRecord(ns.default) ? ns.default[exp] : undefined);
  if (typeof fn !== 'function') {
    throw new PromforkError('PROMFORK_ERR_INVALID_VALUE', `${what}: "${spec}" does not export a function \`${exp}\``);
  }
  return fn as Hooks[HookName];
}

/** Loads, checks and converts one config file; `file` is resolved against `cwd`. */
export async function loadConfigFile(file: string, cwd: string = process.cwd()): Promise<LoadedConfigFile> {
  const abs = path.resolve(cwd, file);
  const ext = path.extname(abs).toLowerCase();
  if (!(CONFIG_EXTENSIONS as readonly string[]).includes(ext)) {
    throw fileError(abs, `unsupported extension "${ext}"; use one of ${CONFIG_EXTENSIONS.join(' ')}`);
  }
  try {
    if (!statSync(abs).isFile()) throw fileError(abs, 'not a regular file');
  } catch (err) {
    if (err instanceof PromforkError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw fileError(abs, code === 'ENOENT' ? 'file not found' : firstLine((err as Error).message), err);
  }

  const isJs = ext === '.js' || ext === '.mjs' || ext === '.cjs';
  let pythonLayout: PythonExporterLayout | undefined;
  let entries: Map<string, unknown>;
  if (isJs) entries = exportsOf(abs, await runJs(abs, ext));
  else {
    const data = readData(abs, ext);
    if (isPythonExporterLayout(data)) {
      pythonLayout = readPythonExporterLayout(abs, data.exporter as Record<string, unknown>);
      delete data.exporter; // promfork's own keys may stand beside it
    }
    entries = new Map(Object.entries(data));
  }

  const settings: Record<string, unknown> = {};
  const hooks: Hooks = {};
  for (const [key, value] of entries) {
    if (value === undefined) continue;
    const def = SETTINGS_BY_KEY.get(key as SettingKey);
    if (def) {
      const r = fromValue(def, value);
      if (!r.ok) throw invalidValue(`setting \`${key}\` in ${abs}`, def, value, r.reason, true);
      settings[key] = r.value;
    } else if ((HOOK_NAMES as readonly string[]).includes(key)) {
      const name = key as HookName;
      if (typeof value === 'function') hooks[name] = value as never;
      else if (typeof value === 'string') hooks[name] = (await resolveHook(abs, name, value)) as never;
      else throw invalidValue(`hook \`${key}\` in ${abs}`, { type: 'string', expects: 'a function or "MODULE:EXPORT"' }, value);
    } else {
      const hint = closest(key, KEY_SUGGESTIONS);
      throw new PromforkError(
        'PROMFORK_ERR_UNKNOWN_CONFIG_KEY',
        `unknown setting \`${key}\` in ${abs}${hint ? `; did you mean \`${hint}\`?` : '; see promfork --help for the settings'}`,
      );
    }
  }
  return { path: abs, settings: settings as Partial<Settings>, hooks, ...(pythonLayout ? { pythonLayout } : {}) };
}

/** The hooks of a config file, for a worker process (functions cannot cross IPC, so it re-reads the file). */
export async function loadHooksFromFile(file: string): Promise<Hooks> {
  return (await loadConfigFile(file)).hooks;
}
