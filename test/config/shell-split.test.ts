import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { shellSplit } from '../../src/config/shell-split.js';
import { throwsError } from './helpers.js';

describe('shellSplit', () => {
  const cases: [string, string[]][] = [
    ['', []],
    ['   \t\n ', []],
    ['-w 4 --bind 0.0.0.0:80', ['-w', '4', '--bind', '0.0.0.0:80']],
    ['  -w\t4\n', ['-w', '4']],
    [`--access-logformat '%(h)s "%(r)s" $HOME \\n'`, ['--access-logformat', '%(h)s "%(r)s" $HOME \\n']],
    [`--name "a b" c`, ['--name', 'a b', 'c']],
    [`"a \\" \\\\ \\$ \\\` \\x"`, ['a " \\ $ ` \\x']],
    [`a\\ b c\\'d \\"e\\\\`, ['a b', "c'd", '"e\\']],
    [`x'y'"z" w`, ['xyz', 'w']],
    [`'' ""`, ['', '']],
    ['a\\\nb', ['ab']],
    ['"a\\\nb"', ['ab']],
    ['--bind=unix:/tmp/a\\ b.sock', ['--bind=unix:/tmp/a b.sock']],
    ['# not a comment', ['#', 'not', 'a', 'comment']],
  ];
  for (const [input, expected] of cases) {
    it(JSON.stringify(input), () => assert.deepEqual(shellSplit(input), expected));
  }

  it('rejects an unterminated single quote, naming PROMFORK_CMD_ARGS', () => {
    throwsError(() => shellSplit("-n 'abc"), 'PROMFORK_ERR_INVALID_VALUE',
      `PROMFORK_CMD_ARGS has an unterminated ' quote at character 4 of 7 (the value is not shown); close the quote or escape it as \\'`);
  });

  it('rejects an unterminated double quote', () => {
    throwsError(() => shellSplit('-n "ab\\"'), 'PROMFORK_ERR_INVALID_VALUE',
      /^PROMFORK_CMD_ARGS has an unterminated " quote at character 4 of /);
  });

  it('rejects a trailing backslash', () => {
    throwsError(() => shellSplit('-w 4 \\'), 'PROMFORK_ERR_INVALID_VALUE',
      'PROMFORK_CMD_ARGS has a trailing backslash at character 6 of 6 (the value is not shown); remove it or double it');
  });

  it('names another source when asked', () => {
    throwsError(() => shellSplit('"', 'MY_ARGS'), 'PROMFORK_ERR_INVALID_VALUE', /^MY_ARGS has an unterminated " quote/);
  });
});
