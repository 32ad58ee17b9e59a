import { editDistance } from '../core/index.ts';
/**
 * Key paths name a place in a TOML document the way users read it: `http_service.checks[0].interval`.
 * The validator, the unknown-key walker and the source locator all build paths with formatPath, so a
 * diagnostic's path can be looked up in the locator's map by plain string equality.
 */
export type PathSegment = string | number;

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

/** formatPath renders segments as a TOML-style key path; keys that are not bare TOML keys are quoted. */
export function formatPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const seg of segments) {
    if (typeof seg === 'number') {
      out += `[${seg}]`;
      continue;
    }
    const key = BARE_KEY.test(seg) ? seg : JSON.stringify(seg);
    out += out === '' ? key : `.${key}`;
  }
  return out;
}

/** joinPath appends one segment to an already formatted path. */
export function joinPath(base: string, seg: PathSegment): string {
  if (typeof seg === 'number') return `${base}[${seg}]`;
  const key = formatPath([seg]);
  return base === '' ? key : `${base}.${key}`;
}

/**
 * isTable tells a TOML table from every other value. smol-toml makes tables with a null prototype and
 * dates as TomlDate (a Date), and zod's object schema would accept a Date as an empty table.
 */
export function isTable(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === null || proto === Object.prototype;
}

/** describeValue renders a value for a message: strings quoted, tables and arrays by kind. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v instanceof Date) return 'a date';
  if (Array.isArray(v)) return v.length > 0 && v.every(isTable) ? 'an array of tables' : 'an array';
  if (isTable(v)) return 'a table';
  return typeof v;
}

export { editDistance };

/**
 * closest returns the candidate a mistyped key most likely meant, or undefined when none is close.
 * Case and `-` versus `_` are ignored first, because `Internal-Port` is a spelling of `internal_port`,
 * not a different key; otherwise a third of the key's length may differ, at least one character.
 */
export function closest(input: string, candidates: Iterable<string>): string | undefined {
  const fold = (s: string) => s.toLowerCase().replaceAll('-', '_');
  const folded = fold(input);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    if (fold(c) === folded) return c;
    const dist = editDistance(folded, fold(c));
    if (dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  const allowed = Math.max(1, Math.floor(input.length / 3));
  return bestDistance <= allowed ? best : undefined;
}
