/**
 * App and org names become DNS labels (`<app>.internal`, `<app>.<domain>`), so they follow RFC 1123
 * label rules, lower-case only: 2–63 characters of a–z, 0–9 and `-`, starting with a letter and not
 * ending with `-`. A few names are reserved because Ward's own DNS uses them.
 */
export const NAME_RE = /^[a-z][a-z0-9-]{0,61}[a-z0-9]$/;

const RESERVED = new Set(['internal', 'vm', 'apps', 'ward', 'api', 'www', 'localhost', 'admin', 'default']);

/** nameProblem returns why s is not a valid app or org name, or undefined when it is. */
export function nameProblem(s: string): string | undefined {
  if (typeof s !== 'string' || s.length === 0) return 'a name is required';
  if (s.length > 63) return `it is ${s.length} characters long; at most 63 are allowed`;
  if (s !== s.toLowerCase()) return 'it has upper-case letters; names are lower-case';
  if (!NAME_RE.test(s)) return 'names use a–z, 0–9 and "-", start with a letter, do not end with "-", and are 2–63 characters';
  if (s.includes('--')) return 'it has "--", which DNS reserves for encoded labels';
  if (RESERVED.has(s)) return `"${s}" is reserved`;
  return undefined;
}

const EMAIL_RE = /^[^\s@]{1,64}@[^\s@]{1,255}\.[^\s@]{1,63}$/;

/** normalizeEmail lower-cases and trims an email, or returns undefined if it is not plausibly one. */
export function normalizeEmail(s: string): string | undefined {
  if (typeof s !== 'string') return undefined;
  const e = s.trim().toLowerCase();
  return e.length <= 254 && EMAIL_RE.test(e) ? e : undefined;
}
