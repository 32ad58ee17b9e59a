/**
 * Durations and sizes as users write them (shared/CLI.md): `30s`, `5m`, `1h`, `7d`, `250ms`;
 * `512MB`, `1GB`, `64KiB`. Parsing is strict: a bare number, a negative value or an unknown unit is an
 * error, because a silent guess at a unit (seconds? milliseconds?) is how outages start.
 */
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** parseDuration returns milliseconds, or throws a RangeError naming the accepted forms. */
export function parseDuration(input: string): number {
  const s = input.trim();
  // Compound forms like `1h30m` are accepted as a sum of parts.
  const parts = s.match(/\d+(?:\.\d+)?(?:ms|s|m|h|d)/g);
  if (!parts || parts.join('') !== s) {
    throw new RangeError(`invalid duration ${JSON.stringify(input)}: use a number and a unit, like 30s, 5m, 1h or 7d`);
  }
  let total = 0;
  for (const p of parts) {
    const m = DURATION_RE.exec(p)!;
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
  }
  return Math.round(total);
}

/** formatDuration renders milliseconds the way parseDuration reads them, largest unit that is exact. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
};
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/i;

/**
 * parseSize returns bytes. As Fly does for `memory = "256MB"`, the decimal-looking units MB and GB are read
 * as binary (MiB, GiB): nobody sizing memory or a volume means 10^6. The explicit KiB/MiB/GiB forms are
 * accepted too; `B` alone is bytes.
 */
export function parseSize(input: string): number {
  const m = SIZE_RE.exec(input.trim());
  const unit = m?.[2]?.toLowerCase();
  if (!m || unit === undefined || !(unit in SIZE_UNITS)) {
    throw new RangeError(`invalid size ${JSON.stringify(input)}: use a number and a unit, like 512MB or 1GB`);
  }
  const binary = unit.length === 2 && unit !== 'b' ? unit[0] + 'ib' : unit;
  return Math.round(Number(m[1]) * SIZE_UNITS[binary]!);
}

/** formatSize renders bytes with the largest binary unit that keeps it readable, e.g. `256MB`. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [['TB', 1024 ** 4], ['GB', 1024 ** 3], ['MB', 1024 ** 2], ['KB', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}
