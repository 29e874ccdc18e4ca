#!/bin/sh
// 2>/dev/null; exec node --inspect-port=192.0.2.1:9229 "$0" "$@"
// The `promfork` command. Run as a program, this file is first a shell script (the line above: `//` fails
// quietly, then exec): it starts Node with an inspector port that cannot be bound, so that a SIGUSR1 during
// Node's own start-up opens no inspector (./inspector-guard.ts). Run by Node (`node dist/cli.js`), both lines
// are comments.
//
// Then the first module to run holds SIGUSR1 and SIGUSR2, before anything else is even loaded; the CLI itself
// (./cli-main.ts) is imported afterwards.

import './early-signals.js';

await import('./cli-main.js');
