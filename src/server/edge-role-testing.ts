// What the edge role's tests share: a role on ephemeral ports with an issuer that always fails (no CA),
// and a plain-HTTP GET through it by Host. Not a test file itself.
import { request } from 'node:http';
import { pino } from 'pino';
import { resolveServerConfig, type ServerFlags } from '../config/index.ts';
import type { Store } from '../store/index.ts';
import { ephemeralSealingKeys, type SealingKeys } from '../secrets/index.ts';
import { IssuanceError } from '../edge/index.ts';
import { startEdgeRole, type EdgeRole, type HealthSource } from './edge-role.ts';

/** startTestEdgeRole starts the edge role for dataDir on 127.0.0.1:0 (HTTP and HTTPS), silent, without a CA. */
export function startTestEdgeRole(
  dataDir: string,
  store: Store,
  options: { health: HealthSource; refreshMs: number; flags?: ServerFlags; sealing?: SealingKeys },
): Promise<EdgeRole> {
  const config = resolveServerConfig({
    flags: { 'data-dir': dataDir, roles: 'control,edge', 'http-listen': '127.0.0.1:0', 'https-listen': '127.0.0.1:0', 'log-level': 'silent', ...options.flags },
    env: {},
    cwd: process.cwd(),
  });
  return startEdgeRole(config, store, {
    health: options.health,
    sealing: options.sealing ?? ephemeralSealingKeys(),
    logger: pino({ level: 'silent' }),
    refreshMs: options.refreshMs,
    issuer: { issue: async () => Promise.reject(new IssuanceError('no CA in this test')) },
  });
}

/** roleGet asks the role's plain-HTTP listener for `path` with Host `host`, on a fresh connection. */
export function roleGet(role: EdgeRole, host: string, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: role.addresses().http!.port, path, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
