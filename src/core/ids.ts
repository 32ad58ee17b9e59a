import { randomBytes } from 'node:crypto';

/**
 * Id prefixes name the kind of thing an id points at, the way Stripe's and Fly's do, so an id pasted
 * into the wrong place is caught by its prefix instead of a confusing "not found".
 */
export const ID_PREFIXES = {
  user: 'usr',
  org: 'org',
  membership: 'mem',
  session: 'ses',
  app: 'app',
  invite: 'inv',
  instance: 'ins',
  release: 'rel',
  token: 'tok',
  factor: 'fac',
  host: 'hst',
  volume: 'vol',
  audit: 'aud',
  request: 'req',
  wireguardPeer: 'wgp',
  backupRun: 'bkr',
} as const;

export type IdKind = keyof typeof ID_PREFIXES;
export type IdPrefix = (typeof ID_PREFIXES)[IdKind];

// Crockford's base32, lower-cased: no i, l, o, u, so ids read aloud and survive case folding.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

let lastTime = -1;
let lastRandom: Uint8Array = new Uint8Array(10);

/**
 * newId returns `<prefix>_<26 chars>`: 48 bits of milliseconds then 80 random bits (the ULID layout),
 * so ids sort by creation time as plain strings. Within one millisecond the random part is incremented,
 * keeping ids from one process strictly increasing.
 */
export function newId(kind: IdKind, now: number = Date.now()): string {
  let rand: Uint8Array;
  if (now === lastTime) {
    rand = increment(lastRandom);
  } else {
    rand = new Uint8Array(randomBytes(10));
    lastTime = now;
  }
  lastRandom = rand;
  return `${ID_PREFIXES[kind]}_${encodeTime(now)}${encodeRandom(rand)}`;
}

function increment(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i]! < 255) {
      out[i]! += 1;
      return out;
    }
    out[i] = 0;
  }
  // 80 bits overflowed within one millisecond: practically impossible; fall back to fresh randomness.
  return new Uint8Array(randomBytes(10));
}

function encodeTime(ms: number): string {
  let out = '';
  let t = ms;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[t % 32] + out;
    t = Math.floor(t / 32);
  }
  return out;
}

function encodeRandom(bytes: Uint8Array): string {
  // 80 bits → 16 base32 characters, 5 bits at a time, most significant first.
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return out;
}

const ID_PATTERN = /^([a-z]{3})_([0-9a-hjkmnp-tv-z]{26})$/;

/** isId reports whether s is a well-formed id, of the given kind when one is named. */
export function isId(s: string, kind?: IdKind): boolean {
  const m = ID_PATTERN.exec(s);
  if (!m) return false;
  return kind === undefined ? Object.values(ID_PREFIXES).includes(m[1] as IdPrefix) : m[1] === ID_PREFIXES[kind];
}

/** idTime returns the creation time encoded in an id, in milliseconds since the epoch. */
export function idTime(id: string): number {
  const m = ID_PATTERN.exec(id);
  if (!m) throw new TypeError(`not an id: ${JSON.stringify(id)}`);
  let t = 0;
  for (const c of m[2]!.slice(0, 10)) t = t * 32 + ALPHABET.indexOf(c);
  return t;
}
