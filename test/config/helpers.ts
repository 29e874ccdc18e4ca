// Shared helpers for the config tests: temp dirs and exact error checks.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PromforkError, type ErrorCode } from '../../src/errors.js';

export const FIXTURES = fileURLToPath(new URL('../fixtures/config/', import.meta.url));

export function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

const made: string[] = [];

/** A fresh temp dir whose .js files are ES modules; removed by cleanupTempDirs(). */
export function tempDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'promfork-config-'));
  made.push(dir);
  writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

export function cleanupTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Asserts a PromforkError with this code whose message is exactly `message` (string) or matches it (RegExp). */
export function checkError(err: unknown, code: ErrorCode, message: string | RegExp): true {
  assert.ok(err instanceof PromforkError, `expected a PromforkError, got ${String(err)}`);
  assert.equal(err.code, code);
  if (typeof message === 'string') assert.equal(err.message, message);
  else assert.match(err.message, message);
  assert.ok(!err.message.includes('\n'), 'the message is one line');
  return true;
}

export function throwsError(fn: () => unknown, code: ErrorCode, message: string | RegExp): void {
  assert.throws(fn, (err) => checkError(err, code, message));
}

export async function rejectsError(p: Promise<unknown>, code: ErrorCode, message: string | RegExp): Promise<void> {
  await assert.rejects(p, (err) => checkError(err, code, message));
}
