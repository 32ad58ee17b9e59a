/**
 * WireGuard keys and the wg-quick file a person gets from `ward wireguard create`. Keys are Curve25519
 * (X25519) pairs, written as WireGuard writes them: 32 bytes in standard base64. Pure: no I/O.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';

/** WireGuardKeyPair is a private key and its public key, base64. */
export interface WireGuardKeyPair {
  privateKey: string;
  publicKey: string;
}

// RFC 8410 §7: a PKCS#8 wrapper for a raw X25519 private key is this prefix and the 32 bytes.
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

function b64(jwkValue: string): string {
  return Buffer.from(jwkValue, 'base64url').toString('base64');
}

/** generateWireGuardKeyPair makes a new key pair (what `wg genkey | wg pubkey` does). */
export function generateWireGuardKeyPair(): WireGuardKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey: b64(privateKey.export({ format: 'jwk' }).d!), publicKey: b64(publicKey.export({ format: 'jwk' }).x!) };
}

/** isWireGuardKey says whether text is a base64 WireGuard key (32 bytes). */
export function isWireGuardKey(text: string): boolean {
  return /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(text);
}

/** wireGuardPublicKey derives the public key of a private key (what `wg pubkey` does). */
export function wireGuardPublicKey(privateKey: string): string {
  if (!isWireGuardKey(privateKey)) throw new TypeError('not a WireGuard key');
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, Buffer.from(privateKey, 'base64')]), format: 'der', type: 'pkcs8' });
  return b64(createPublicKey(key).export({ format: 'jwk' }).x!);
}

/** PersonTunnel is what the control plane hands out for a person's WireGuard peer (no private key). */
export interface PersonTunnel {
  /** address is the person's address in the org's people slice (a /128). */
  address: string;
  /** dns is the gateway host's resolver address for the org. */
  dns: string;
  /** allowedIPs is the org's /48: only the org's private network goes through the tunnel. */
  allowedIPs: string[];
  gatewayPublicKey: string;
  gatewayEndpoint: string;
}

/**
 * wgQuickConfig writes the wg-quick(8) file for a person: their private key (made on their machine, it
 * never reaches the server), their address, the internal resolver with `internal` as search domain, and
 * the gateway host as the only peer, for the org prefix only (no default route through the tunnel).
 */
export function wgQuickConfig(o: PersonTunnel & { privateKey: string; name: string; org: string }): string {
  const line = (s: string) => {
    if (/[\r\n]/.test(s)) throw new TypeError('a WireGuard config value cannot hold a line break');
    return s;
  };
  return [
    `# Ward WireGuard peer "${line(o.name)}" on org ${line(o.org)}'s private network.`,
    '# Keep this file private: it holds the peer\'s private key. Use: wg-quick up ./this-file.conf',
    '[Interface]',
    `PrivateKey = ${line(o.privateKey)}`,
    `Address = ${line(o.address)}/128`,
    `DNS = ${line(o.dns)}, internal`,
    '',
    '[Peer]',
    `PublicKey = ${line(o.gatewayPublicKey)}`,
    `Endpoint = ${line(o.gatewayEndpoint)}`,
    `AllowedIPs = ${o.allowedIPs.map(line).join(', ')}`,
    'PersistentKeepalive = 25',
    '',
  ].join('\n');
}
