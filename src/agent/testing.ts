/**
 * Test helpers for the agent's unit tests: a loopback network, an in-memory image provider whose
 * images run a small Node.js app as a host process (with ProcessRuntime), and a seeded store. Never
 * used by production code.
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newId, newPlacement, toTimestamp, type Instance, type InstanceReport, type Release } from '../core/index.ts';
import { normalizeAppConfig, validateAppConfig, type AppConfig } from '../config/index.ts';
import type { Store } from '../store/index.ts';
import type { Attachment, InstanceRef, OrgNetwork } from './network/index.ts';
import type { Image, ImageConfig } from './runtime/index.ts';
import type { Assignment, ImageProvider } from './types.ts';
import type { HookContext } from './hooks/index.ts';

/** LoopbackNetwork gives every instance 127.0.0.1: host processes share the host's network. */
export class LoopbackNetwork implements OrgNetwork {
  readonly attached = new Map<string, Attachment>();
  readonly calls: string[] = [];
  async ensure(orgId: string): Promise<void> {
    this.calls.push(`ensure ${orgId}`);
  }
  async attach(ref: InstanceRef): Promise<Attachment> {
    this.calls.push(`attach ${ref.instanceId}`);
    const existing = this.attached.get(ref.instanceId);
    if (existing) return existing;
    const a: Attachment = {
      instanceId: ref.instanceId,
      orgId: ref.orgId,
      netnsName: `lo-${ref.instanceId}`,
      netnsPath: '/proc/self/ns/net',
      hostInterface: 'lo',
      ipv6: '::1',
      ipv4: '127.0.0.1',
      addresses: ['::1', '127.0.0.1'],
    };
    this.attached.set(ref.instanceId, a);
    return a;
  }
  async detach(instanceId: string): Promise<void> {
    this.calls.push(`detach ${instanceId}`);
    this.attached.delete(instanceId);
  }
  async attachments(): Promise<Attachment[]> {
    return [...this.attached.values()];
  }
}

/**
 * TEST_APP is the app the fake images run: an HTTP server on $PORT answering /, /healthz (503 when
 * UNHEALTHY=1), and /crash (exits 3). With CRASH=1 it prints a line and exits 3 at once; with
 * EXIT_CLEAN=1 it exits 0 at once; IGNORE_SIGTERM=1 makes it ignore SIGTERM.
 */
export const TEST_APP = `'use strict';
const http = require('node:http');
console.log('booting ' + (process.env.WARD_INSTANCE_ID || '?'));
if (process.env.CRASH === '1') { console.error('fatal: cannot start'); process.exit(3); }
if (process.env.EXIT_CLEAN === '1') { console.log('done'); process.exit(0); }
const server = http.createServer((req, res) => {
  if (req.url === '/healthz') { res.statusCode = process.env.UNHEALTHY === '1' ? 503 : 200; return res.end('h'); }
  if (req.url === '/crash') { res.end('bye'); setTimeout(() => process.exit(3), 5); return; }
  res.end('ok');
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening on ' + process.env.PORT));
process.on('SIGTERM', () => {
  if (process.env.IGNORE_SIGTERM === '1') return console.log('ignoring SIGTERM');
  console.log('SIGTERM');
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
`;

/** MemoryImages holds fake images (a temp rootfs with TEST_APP) by digest. */
export class MemoryImages implements ImageProvider {
  readonly images = new Map<string, Image>();
  readonly pulls: string[] = [];
  async get(digest: string): Promise<Image | undefined> {
    return this.images.get(digest);
  }
  async pull(ref: string): Promise<Image> {
    this.pulls.push(ref);
    const digest = ref.slice(ref.indexOf('@') + 1);
    const img = this.images.get(digest);
    if (!img) throw new Error(`no such image ${ref}`);
    return img;
  }
  /** add makes an image whose command runs TEST_APP with Node.js; it returns its digest. */
  async add(root: string, config: Partial<ImageConfig> = {}): Promise<Image> {
    const digest = `sha256:${Buffer.from(newId('release')).toString('hex').padEnd(64, '0').slice(0, 64)}`;
    const rootfs = await mkdtemp(join(root, 'rootfs-'));
    await mkdir(join(rootfs, 'app'), { recursive: true });
    await writeFile(join(rootfs, 'app', 'server.js'), TEST_APP);
    const image: Image = {
      ref: digest,
      refs: [digest],
      digest,
      config: { Entrypoint: [process.execPath, join(rootfs, 'app', 'server.js')], Env: ['FROM_IMAGE=1'], ExposedPorts: [], Labels: {}, ...config },
      platform: 'linux/amd64',
      rootfs,
      chainId: digest,
      size: 0,
      downloadSize: 0,
      layers: 1,
      pulledAt: new Date().toISOString(),
    };
    this.images.set(digest, image);
    return image;
  }
}

/** freePort asks the kernel for a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** appConfig validates and normalizes a ward.toml given as an object (throws on errors). */
export function appConfig(doc: Record<string, unknown>): AppConfig {
  const { raw, diagnostics } = validateAppConfig(doc);
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length || !raw) throw new Error(`bad test config: ${JSON.stringify(errors)}`);
  return normalizeAppConfig(raw);
}

/** Seed is an org, app and host in a store, for placing instances by hand. */
export interface Seed {
  orgId: string;
  appId: string;
  appName: string;
  hostId: string;
}

/** seedStore creates a user, org, app and host (hostId, so an agent registering with it matches). */
export async function seedStore(store: Store, hostId: string = newId('host')): Promise<Seed> {
  const now = toTimestamp(new Date());
  const orgId = newId('org');
  const appId = newId('app');
  const appName = `app-${Math.random().toString(36).slice(2, 8)}`;
  await store.orgs.create({ id: orgId, name: `org-${appName}`, createdAt: now });
  await store.apps.create({ id: appId, orgId, name: appName, createdAt: now, updatedAt: now });
  await store.hosts.register({ id: hostId, name: `host-${appName}`, region: 'local', status: 'ready', capacity: { memoryBytes: 1 << 30, cpus: 1 }, lastHeartbeat: now, createdAt: now });
  return { orgId, appId, appName, hostId };
}

/** placeRelease writes release `version` of the seeded app and `count` instances of it on the host. */
export async function placeRelease(store: Store, seed: Seed, version: number, image: Image, config: AppConfig, count = 1): Promise<{ release: Release; instances: Instance[] }> {
  const now = toTimestamp(new Date());
  const release: Release = {
    id: newId('release'),
    appId: seed.appId,
    version,
    imageRef: image.digest,
    imageDigest: image.digest,
    config: JSON.stringify(config),
    secretsVersion: null,
    strategy: 'immediate',
    status: 'running',
    reason: null,
    createdBy: null,
    createdAt: now,
    updatedAt: now,
  };
  await store.releases.create(release);
  const instances: Instance[] = [];
  for (let i = 0; i < count; i++) {
    const inst: Instance = newPlacement({ id: newId('instance'), appId: seed.appId, releaseId: release.id, hostId: seed.hostId, region: 'local', at: now });
    await store.instances.create(inst);
    instances.push(inst);
  }
  return { release, instances };
}

/** waitFor polls cond until it returns a truthy value, or throws with `what` after ms. */
export async function waitFor<T>(what: string, cond: () => Promise<T | undefined | false> | T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** testContext makes a HookContext for one hook's test; notes and reports are collected. */
export function testContext(over: { config?: AppConfig; imageRef?: string; imageDigest?: string; orgId?: string } = {}): HookContext & { notes: string[]; reports: InstanceReport[] } {
  const now = toTimestamp(new Date());
  const id = newId('instance');
  const config = over.config ?? appConfig({});
  const notes: string[] = [];
  const reports: InstanceReport[] = [];
  const assignment: Assignment = {
    instance: {
      id, appId: 'app_1', releaseId: 'rel_1', hostId: 'hst_1', region: 'local', desiredState: 'running', restartGeneration: 0, observedState: 'pending', health: 'unknown',
      privateIpv6: null, privateIpv4: null, pid: null, restarts: 0, lastExitCode: null, lastExitReason: null, lastExitAt: null, lastLog: null, startedAt: null, createdAt: now, updatedAt: now,
    },
    release: { id: 'rel_1', version: 4, imageRef: over.imageRef ?? 'registry.example.com/team/app:1', imageDigest: over.imageDigest ?? `sha256:${'a'.repeat(64)}`, config, secretsVersion: null },
    app: { id: 'app_1', name: 'web', orgId: over.orgId ?? 'org_1' },
  };
  return {
    instanceId: id,
    assignment,
    config,
    host: { id: 'hst_1', name: 'host-1', region: 'local' },
    note: (m) => notes.push(m),
    report: (r) => reports.push(r),
    mounts: [],
    secretEnv: {},
    health: 'unknown',
    notes,
    reports,
  };
}
