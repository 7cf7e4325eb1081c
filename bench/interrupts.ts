/**
 * Cleanups to run when the bench is interrupted (Ctrl-C, or the SIGTERM that
 * scripts/bench.mjs forwards): `finally` blocks do not run on a signal, and
 * agents, bare node processes, brokers and containers would outlive the run.
 * Each registration returns its own removal, for when the work ends normally.
 */
type Cleanup = () => unknown;
const pending = new Set<Cleanup>();
let interrupted = false;

function onSignal(): void {
  if (interrupted) return;
  interrupted = true;
  void (async () => {
    for (const cleanup of [...pending].reverse()) {
      try {
        await cleanup();
      } catch {
        // best effort: the next cleanup must still run
      }
    }
    process.exit(130);
  })();
}

process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

export function whenInterrupted(cleanup: Cleanup): () => void {
  pending.add(cleanup);
  return () => pending.delete(cleanup);
}
