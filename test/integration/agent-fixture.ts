// A single-node Ward for the agent's integration tests: a real `ward server` (startServer, roles
// control and agent) whose agent runs real crun containers on real network namespaces, through the
// RuntimeHarness's runtime and network (one random prefix for everything, swept afterwards even when a
// test fails). Helpers call the HTTP API as a signed-up owner.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveServerConfig } from '../../src/config/index.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import type { RuntimeOptions } from '../../src/server/agent-role.ts';
import { InternalResolver } from '../../src/agent/network/index.ts';
import { RuntimeHarness, urlFor } from './runtime-harness.ts';
import { tarDirectory } from '../fixtures/archives.ts';
import { tempDir, writeOciLayout } from '../fixtures/images.ts';

export const PASSWORD = 'correct horse battery staple';

/** FAST_RESTART keeps backoffs short so crash tests take seconds (the numbers' meaning is unchanged). */
export const FAST_RESTART = { initialDelayMs: 200, maxDelayMs: 1000, stableAfterMs: 15_000, crashLoopLimit: 3 };

export interface WardNode {
  h: RuntimeHarness;
  server: RunningServer;
  dataDir: string;
  token: string;
  /** api calls the API as the owner and returns status and parsed body. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** upload sends an archive for an app and returns the parsed answer. */
  upload(app: string, archive: Buffer, format: 'oci-archive' | 'docker-archive', name?: string): Promise<{ status: number; body: any }>;
  /** restartServer closes the server, leaving instances running, and starts a new one on the same state. */
  restartServer(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function startNode(opts: { restart?: RuntimeOptions['restart']; maxUploadBytes?: number; dns?: boolean } = {}): Promise<WardNode> {
  // With dns, the network serves each org's internal resolver (port 53 on the org bridges' gateways;
  // nothing is forwarded upstream) and the agent publishes its instances to it.
  const resolver = opts.dns ? new InternalResolver({ upstreams: [] }) : undefined;
  const h = new RuntimeHarness(resolver ? { resolver } : {});
  await h.setUp();
  const dataDir = await mkdtemp(join(tmpdir(), `${h.prefix}-data-`));
  const boot = async (runtime = h.runtime) => {
    const config = resolveServerConfig({
      flags: { 'data-dir': dataDir, 'api-listen': '127.0.0.1:0', roles: 'control,agent', 'log-level': process.env.WARD_TEST_LOG ?? 'silent', hostname: `${h.prefix}-host` },
      env: {},
      cwd: process.cwd(),
    });
    return startServer(config, {
      runtime: {
        runtime,
        network: h.network,
        ...(resolver ? { resolver } : {}),
        restart: opts.restart ?? FAST_RESTART,
        ...(opts.maxUploadBytes ? { maxUploadBytes: opts.maxUploadBytes } : {}),
        agent: { reconcileIntervalMs: 500, capture: { pollMs: 50 } },
      },
    });
  };
  let server: RunningServer;
  try {
    server = await boot();
  } catch (e) {
    // Nothing of a half-started node may stay behind: the harness sweeps its prefix.
    await h.cleanup().catch(() => {});
    await resolver?.close();
    await rm(dataDir, { recursive: true, force: true });
    throw e;
  }
  const node: WardNode = {
    h,
    get server() {
      return server;
    },
    dataDir,
    token: '',
    async api(method, path, body) {
      const r = await fetch(server.apiUrl + path, {
        method,
        headers: { authorization: `Bearer ${node.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await r.text();
      return { status: r.status, body: text ? JSON.parse(text) : undefined };
    },
    async upload(app, archive, format, name) {
      const q = new URLSearchParams({ format, ...(name ? { name } : {}) });
      const r = await fetch(`${server.apiUrl}/v1/apps/${app}/images?${q}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${node.token}`, 'content-type': 'application/octet-stream' },
        body: archive,
      });
      return { status: r.status, body: await r.json() };
    },
    async restartServer() {
      await server.close();
      // A new runtime object over the same state: what an agent restart gets.
      server = await boot(h.newRuntime());
    },
    async cleanup() {
      try {
        await server.close({ stopInstances: true }).catch(() => {});
      } finally {
        await h.cleanup().catch(() => {});
        await resolver?.close().catch(() => {});
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
  try {
    const signup = await fetch(`${server.apiUrl}/v1/auth/signup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'owner@example.com', password: PASSWORD, org: 'acme' }),
    });
    node.token = ((await signup.json()) as { session: { token: string } }).session.token;
  } catch (e) {
    await node.cleanup();
    throw e;
  }
  return node;
}

/** archiveOf reads a fixture image (`oci-archive:PATH`) into memory for upload. */
export async function archiveOf(ref: string): Promise<Buffer> {
  return readFile(ref.slice(ref.indexOf(':') + 1));
}

/** shellImage builds an oci-archive of busybox whose command is `sh -c SCRIPT`. */
export async function shellImage(script: string): Promise<Buffer> {
  const { dir, remove } = await tempDir('ward-shell-image-');
  try {
    const busybox = await readFile('/bin/busybox');
    await writeOciLayout(dir, [{
      layers: [{ entries: [{ path: 'bin/', type: 'directory' }, { path: 'bin/busybox', type: 'file', mode: 0o755, data: busybox }, { path: 'bin/sh', type: 'symlink', linkpath: 'busybox' }, { path: 'tmp/', type: 'directory', mode: 0o1777 }] }],
      config: { Cmd: ['/bin/sh', '-c', script], Env: ['PATH=/bin'] },
    }]);
    return await tarDirectory(dir);
  } finally {
    await remove();
  }
}

/** waitFor polls until cond gives a truthy value, or throws with what it last saw. */
export async function waitFor<T>(what: string, cond: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** release waits until release `version` of the app has left `running` and returns it with its instances. */
export async function settled(node: WardNode, app: string, version: number, ms = 60_000): Promise<{ release: any; instances: any[] }> {
  return waitFor(`release v${version} of ${app} to settle`, async () => {
    const r = await node.api('GET', `/v1/apps/${app}/releases/${version}`);
    return r.status === 200 && r.body.release.status !== 'running' ? r.body : undefined;
  }, ms);
}

/** serves checks the instance answers on both its private addresses. */
export async function serves(instance: { private_ip: string; private_ipv4: string }, path = '/'): Promise<string[]> {
  const out: string[] = [];
  for (const a of [instance.private_ipv4, instance.private_ip]) {
    const r = await fetch(urlFor(a, path), { signal: AbortSignal.timeout(3000) });
    out.push(`${r.status} ${(await r.text()).trim()}`);
  }
  return out;
}

/** appPid is the host pid of the app process: the one child of the instance's init (tini). */
export async function appPid(initPid: number): Promise<number> {
  return waitFor(`a child of init ${initPid}`, async () => {
    const children = (await readFile(`/proc/${initPid}/task/${initPid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean).map(Number);
    return children.length === 1 ? children[0] : undefined;
  }, 10_000);
}
