/**
 * Checks on an InstanceSpec before anything is made for it. A malformed spec is a bug in the agent
 * (it builds specs from validated config and images), so it throws a TypeError; limits beyond what the
 * host has are the user's to fix, so they are a UserError.
 */
import { isAbsolute } from 'node:path';
import { UserError } from '../../core/errors.ts';
import { isId } from '../../core/ids.ts';
import { formatSize } from '../../core/units.ts';
import type { IdMapping, InstanceSpec } from './types.ts';

/** MIN_MEMORY_BYTES is the least memory an instance may have: below it even a shell fails to start. */
export const MIN_MEMORY_BYTES = 8 * 1024 * 1024;
/** MIN_PIDS leaves room for an init, a runtime like Node.js and its threads. */
export const MIN_PIDS = 16;

/** Mount destinations that belong to the runtime's own mounts. */
const RESERVED_DESTINATIONS = ['/', '/proc', '/sys', '/dev', '/etc/hosts', '/etc/resolv.conf', '/etc/hostname'];

/** HostCapacity is what the host can give one instance at most. */
export interface HostCapacity {
  memoryBytes: number;
  cpus: number;
}

function noNul(s: string, what: string): void {
  if (s.includes('\0')) throw new TypeError(`${what} contains a NUL byte`);
}

/** validateSpec throws TypeError for a malformed spec and UserError for limits beyond the host. */
export function validateSpec(spec: InstanceSpec, host: HostCapacity, mapping: IdMapping): void {
  if (!isId(spec.id, 'instance')) throw new TypeError(`instance id ${JSON.stringify(spec.id)} is not an ins_ id`);
  if (!isAbsolute(spec.rootfs)) throw new TypeError(`rootfs must be an absolute path, got ${JSON.stringify(spec.rootfs)}`);
  const p = spec.process;
  if (!Array.isArray(p.args) || p.args.length === 0 || p.args[0] === '') throw new TypeError('process.args is empty');
  p.args.forEach((a, i) => noNul(a, `process.args[${i}]`));
  if (!isAbsolute(p.cwd)) throw new TypeError(`process.cwd must be absolute, got ${JSON.stringify(p.cwd)}`);
  for (const [k, v] of Object.entries(p.env)) {
    if (k === '' || k.includes('=')) throw new TypeError(`environment variable name ${JSON.stringify(k)} is invalid`);
    noNul(k, 'an environment variable name');
    noNul(v, `environment variable ${k}`);
  }
  for (const id of [p.user.uid, p.user.gid, ...(p.user.additionalGids ?? [])]) {
    if (!Number.isInteger(id) || id < mapping.containerId || id >= mapping.containerId + mapping.size) {
      throw new TypeError(`user or group id ${id} is outside the instance's mapped range`);
    }
  }
  const r = spec.resources;
  if (!Number.isInteger(r.memoryBytes) || r.memoryBytes < MIN_MEMORY_BYTES) {
    throw new TypeError(`memoryBytes must be an integer of at least ${formatSize(MIN_MEMORY_BYTES)}`);
  }
  if (!(r.cpus > 0)) throw new TypeError('cpus must be positive');
  if (!Number.isInteger(r.pids) || r.pids < MIN_PIDS) throw new TypeError(`pids must be an integer of at least ${MIN_PIDS}`);
  if (r.nofile !== undefined && (!Number.isInteger(r.nofile) || r.nofile < 64)) throw new TypeError('nofile must be an integer of at least 64');
  for (const m of spec.mounts) {
    if (!isAbsolute(m.source) || !isAbsolute(m.destination)) throw new TypeError(`mount paths must be absolute: ${m.source} → ${m.destination}`);
    if (m.destination.split('/').includes('..')) throw new TypeError(`mount destination ${m.destination} contains ..`);
    const reserved = RESERVED_DESTINATIONS.find((d) => m.destination === d || (d !== '/' && m.destination.startsWith(d + '/')));
    if (reserved) throw new TypeError(`mount destination ${m.destination} is reserved for the runtime`);
  }
  if (spec.network && !isAbsolute(spec.network.netnsPath)) throw new TypeError('network.netnsPath must be absolute');

  if (r.memoryBytes > host.memoryBytes) {
    throw new UserError('resources_exceed_host', `The instance asks for ${formatSize(r.memoryBytes)} of memory; this host has ${formatSize(host.memoryBytes)}.`, {
      hint: 'Lower memory under [resources] in ward.toml, or run the app on a bigger host.',
      details: { requested: r.memoryBytes, available: host.memoryBytes },
    });
  }
  if (r.cpus > host.cpus) {
    throw new UserError('resources_exceed_host', `The instance asks for ${r.cpus} CPUs; this host has ${host.cpus}.`, {
      hint: 'Lower cpus under [resources] in ward.toml, or run the app on a bigger host.',
      details: { requested: r.cpus, available: host.cpus },
    });
  }
}
