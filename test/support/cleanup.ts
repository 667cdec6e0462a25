const cleanups = new Set<() => void>();
let installed = false;

/**
 * A last-resort cleanup (processes, servers, directories a test never stopped), run when the
 * test process exits or a signal ends it: vitest ends its fork workers with SIGTERM, which
 * would otherwise skip the 'exit' event. Cleanups run synchronously, once; a function given
 * again is not added twice.
 */
export function atExit(cleanup: () => void): void {
  cleanups.add(cleanup);
  if (installed) return;
  installed = true;
  const run = (): void => {
    for (const each of cleanups) {
      try {
        each();
      } catch {
        // the others still run
      }
    }
    cleanups.clear();
  };
  process.on('exit', run);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      run();
      process.kill(process.pid, signal);
    });
  }
}
