import { UserError } from '../core/index.ts';
import type { Listen } from './tcp.ts';

/** listenError turns a bind failure into the user error that says what to do about it. */
export function listenError(at: Listen, e: NodeJS.ErrnoException): UserError {
  const where = `${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}`;
  const hint =
    e.code === 'EADDRINUSE'
      ? `another process listens on ${where}; stop it or choose another address`
      : e.code === 'EACCES'
        ? `ports below 1024 need root or CAP_NET_BIND_SERVICE (setcap cap_net_bind_service=+ep on the node binary)`
        : 'check the address';
  return new UserError('listen_failed', `the edge cannot listen on ${where}: ${e.code ?? e.message}`, { hint, cause: e });
}
