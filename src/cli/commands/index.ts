import type { CommandTree } from '../help.ts';
import apps from './apps/index.ts';
import audit from './audit/index.ts';
import auth from './auth/index.ts';
import orgs from './orgs/index.ts';
import server from './server.ts';
import secrets from './secrets/index.ts';
import certs from './certs/index.ts';
import tokens from './tokens/index.ts';
import version from './version.ts';
import deploy from './deploy.ts';
import status from './status.ts';
import restart from './restart.ts';
import logs from './logs.ts';
import releases from './releases/index.ts';
import scale from './scale/index.ts';
import wireguard from './wireguard/index.ts';
import volumes from './volumes/index.ts';
import backups from './backups/index.ts';
import up from './up.ts';

/**
 * commandTree is every command the CLI knows: nouns with their verbs, and top-level commands. A new verb
 * is a file in `commands/<noun>/` added to that noun's index.ts; a new noun is a folder added here.
 */
export const commandTree: CommandTree = [auth, orgs, apps, deploy, status, releases, scale, restart, logs, secrets, volumes, backups, certs, wireguard, tokens, audit, up, server, version];
