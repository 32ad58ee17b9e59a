import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';

/**
 * Small validators shared by the app config (ward.toml) and the server config. Each returns why a value
 * is not acceptable, or undefined when it is, so callers can put the reason in their own message.
 */

const REGION_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** regionProblem checks a region name: it becomes a DNS label in `<region>.<app>.internal`. */
export function regionProblem(s: string): string | undefined {
  if (s.length === 0) return 'a region name is required';
  if (!REGION_RE.test(s)) return 'region names use a–z, 0–9 and "-" (not first or last), at most 63 characters';
  return undefined;
}

/**
 * ENV_NAME_RE is the POSIX portable environment variable name: letters, digits and `_`, not starting
 * with a digit. Other names work in some shells and not others, so they are refused up front.
 */
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * hostnameProblem checks a public DNS name that the edge routes and gets a certificate for. Names are
 * compared lower-case (DNS is case-insensitive) and a trailing dot is allowed, both per RFC 4343 and
 * RFC 1034; the caller normalizes with normalizeHostname.
 */
export function hostnameProblem(input: string): string | undefined {
  const s = normalizeHostname(input);
  if (s.length === 0) return 'a hostname is required';
  if (s.includes('*')) return 'wildcard names need a DNS-01 challenge, which Ward does not do; list each hostname';
  if (isIP(s.replace(/^\[|\]$/g, '')) !== 0) return 'an IP address is not a hostname; certificates are issued for DNS names';
  if (/[^\x00-\x7f]/.test(s)) {
    const ascii = domainToASCII(s);
    return ascii ? `write internationalized names in their ASCII form: "${ascii}"` : 'it is not a valid internationalized domain name';
  }
  if (s.length > 253) return `it is ${s.length} characters long; DNS names are at most 253`;
  const labels = s.split('.');
  if (labels.length < 2) return 'use a fully qualified name like "app.example.com"';
  for (const label of labels) {
    if (!LABEL_RE.test(label)) return `"${label}" is not a DNS label (a–z, 0–9 and "-", not first or last, 1–63 characters)`;
  }
  if (/^\d+$/.test(labels[labels.length - 1]!)) return 'the last label of a DNS name is never all digits';
  return undefined;
}

/** normalizeHostname lower-cases a DNS name and drops one trailing dot. */
export function normalizeHostname(s: string): string {
  const lower = s.trim().toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** HTTP_TOKEN_RE is a header field name, the `token` rule of RFC 9110 §5.1. */
export const HTTP_TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * headerValueProblem refuses CR, LF and NUL in a header value: RFC 9110 §5.5 forbids them, and letting
 * them through would let a config smuggle extra headers into health-check requests.
 */
export function headerValueProblem(s: string): string | undefined {
  return /[\r\n\0]/.test(s) ? 'header values may not contain line breaks or NUL' : undefined;
}
