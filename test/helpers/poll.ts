// Waiting on an outcome without sleeping and hoping: poll `probe` every 50 ms until it returns a value other than
// undefined, and fail at the deadline naming what was awaited (with the probe's last error, or `last()`).

export async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 15_000,
  last?: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err; // e.g. a server not listening yet: try again until the deadline
    }
    if (Date.now() > deadline) {
      const detail = last ? `; last:\n${last()}` : lastError ? `: ${String(lastError)}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
