// An app with a syntax error: the error says where (FILE:LINE, the source line and a caret, as Node prints an
// uncaught one), exit status 3, and no stack of Node's module loader.

import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { FIXTURES, PromforkProcess } from '../helpers/server.js';

for (const [kind, file, message, source, caret] of [
  ['an ES module', 'syntax-error.mjs', "Unexpected identifier 'is'", 'this is bad', '     ^^'],
  ['a CommonJS module', 'syntax-error.cjs', "Unexpected token ';'", 'let y = ;', '        ^'],
] as const) {
  test(`a syntax error in ${kind} app names FILE:LINE and shows the line; no internal stack`, async () => {
    const app = path.join(FIXTURES, 'errors', file);
    const p = new PromforkProcess(['-b', '127.0.0.1:0', '--no-metrics', app]);
    const { code } = await p.exited;
    assert.equal(code, 3, p.output);
    assert.match(p.output, new RegExp(`\\[ERROR\\] Error: app module ${escape(app)} failed to load: ${escape(message)} \\(${escape(app)}:3\\) \\[PROMFORK_ERR_APP_IMPORT\\]\\n`));
    assert.ok(p.output.includes(`[ERROR] ${app}:3\n${source}\n${caret}\n`), p.output);
    assert.doesNotMatch(p.output, /^\s+at /m, 'no stack');
    assert.doesNotMatch(p.output, /node:internal/);
  });
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
