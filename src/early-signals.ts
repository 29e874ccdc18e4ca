// Imported first by each entry module (the CLI and the worker entry), and importing nothing itself, so that it
// is the first code of the process to run: from here on a SIGUSR1 never reaches Node's built-in handler, which
// opens the inspector (a debugger on 127.0.0.1:9229 that any local user can attach to and run code as the
// server), and a SIGUSR2 never ends the primary. The entry modules load everything else with a dynamic import
// afterwards, because ESM evaluates a module only after its whole static import graph has been loaded.
//
// These listeners stay installed for the life of the process (removing the last listener would hand the signal
// back to Node's default). The primary's and the workers' own handlers are added beside them once they exist; a
// USR1 that arrives before that has nothing to reopen yet (the log files are opened afterwards) and is dropped.
// Node's own start-up, before this module runs, is covered by the command line: see ./inspector-guard.ts.

const holdSignal = (): void => {};
process.on('SIGUSR1', holdSignal);
process.on('SIGUSR2', holdSignal);

export {};
