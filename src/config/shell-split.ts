// POSIX-shell-like word splitting for PROMFORK_CMD_ARGS (Gunicorn uses Python's shlex.split for
// GUNICORN_CMD_ARGS): whitespace separates words; single quotes keep everything literally; inside
// double quotes a backslash escapes only $ ` " \ and newline; outside quotes a backslash escapes
// any character. No variable expansion, globbing or comments.

import { PromforkError } from '../errors.js';

export function shellSplit(input: string, source = 'PROMFORK_CMD_ARGS'): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false; // distinguishes an empty quoted word ('') from no word at all
  let i = 0;
  const broken = (what: string, at: number, fix: string): PromforkError =>
    new PromforkError(
      'PROMFORK_ERR_INVALID_VALUE',
      // The value itself is not shown: it may hold a secret (--redis-password, --metrics-basic-auth).
      `${source} has ${what} at character ${at + 1} of ${input.length} (the value is not shown); ${fix}`,
    );

  while (i < input.length) {
    const c = input[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (c === "'") {
      const end = input.indexOf("'", i + 1);
      if (end < 0) throw broken("an unterminated ' quote", i, "close the quote or escape it as \\'");
      word += input.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      const start = i;
      i++;
      for (;;) {
        if (i >= input.length) throw broken('an unterminated " quote', start, 'close the quote or escape it as \\"');
        const d = input[i];
        if (d === '"') break;
        if (d === '\\' && i + 1 < input.length && '$`"\\\n'.includes(input[i + 1])) {
          if (input[i + 1] !== '\n') word += input[i + 1]; // backslash-newline is a line continuation
          i += 2;
        } else {
          word += d;
          i++;
        }
      }
      inWord = true;
      i++;
    } else if (c === '\\') {
      if (i + 1 >= input.length) throw broken('a trailing backslash', i, 'remove it or double it');
      if (input[i + 1] !== '\n') {
        word += input[i + 1];
        inWord = true;
      }
      i += 2;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  return words;
}
