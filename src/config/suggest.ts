// "Did you mean ...?" for unknown options and config keys. Names are compared without case, '-' or
// '_', so Gunicorn's snake_case (`max_requests`) and flag spellings (`--keepalive`) find their match.

function normalize(s: string): string {
  return s.toLowerCase().replace(/[-_]/g, '');
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * The suggestion for `input`, or undefined when nothing is close. `candidates` maps each name to
 * compare against to what to suggest for it (e.g. `pidfile` -> `--pid`).
 */
export function closest(input: string, candidates: ReadonlyMap<string, string>): string | undefined {
  const n = normalize(input);
  if (n === '') return undefined;
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(n.length / 3)) + 1;
  for (const [name, suggestion] of candidates) {
    const m = normalize(name);
    if (m === n) return suggestion;
    const d = distance(n, m);
    if (d < bestDistance) {
      best = suggestion;
      bestDistance = d;
    }
  }
  if (best !== undefined) return best;
  // A truncated name (`--max-req`): the shortest candidate it starts.
  if (n.length >= 3) {
    const prefixed = [...candidates].filter(([name]) => normalize(name).startsWith(n));
    prefixed.sort((a, b) => a[0].length - b[0].length);
    return prefixed[0]?.[1];
  }
  return undefined;
}
