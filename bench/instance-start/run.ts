// bench/instance-start: how long Ward takes to start an instance, against bare crun on the same bundle.
//
//   node bench/instance-start/run.ts [--runs 20]      (root; a benchmark, not a test)
//
// For each of N runs it measures, for Ward (CrunRuntime.start of the test rootfs, on a fresh network
// attachment) and for bare `crun run -d` of the same config.json (same rootfs, limits, seccomp,
// namespaces, joining an existing network namespace):
//   start → running    until the container's process runs (Ward: start() resolves; bare: crun returns)
//   running → 200      until the app answers its first HTTP 200 on its private address
// and prints p50/p95 and Ward/bare ratios. Anchors: Fly Machines boot in about 300 ms; Firecracker
// reaches the guest's init in ≤ 125 ms. Goal: Ward's own overhead ≤ 50 ms over bare crun.
import { closeSync, openSync } from 'node:fs';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { newId } from '../../src/core/index.ts';
import { run, start as spawnProcess, type Argv } from '../../src/exec/index.ts';
import { crunArgv, crunDeleteArgv, type CrunContext } from '../../src/agent/runtime/crun/commands.ts';
import type { OciConfig } from '../../src/agent/runtime/crun/spec.ts';
import { RuntimeHarness, cannotRunContainers, urlFor } from '../../test/integration/runtime-harness.ts';

const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 20;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** firstOk polls the URL as fast as connections fail (a refused connect on a local bridge takes microseconds). */
async function firstOk(url: string, timeoutMs = 10_000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await r.arrayBuffer();
      if (r.status === 200) return performance.now() - t0;
    } catch {
      // Not listening yet.
    }
    if (performance.now() - t0 > timeoutMs) throw new Error(`${url} gave no 200 within ${timeoutMs} ms`);
    await new Promise((r) => setImmediate(r));
  }
}

/** spawnToExit runs argv with stdout/stderr on a file: `crun run -d` hands its stdout to the container, never pipe it. */
async function spawnToExit(argv: Argv, logFile: string): Promise<number> {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawnProcess(argv, { stdio: ['ignore', fd, fd] });
    return await new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => resolve(code ?? -1));
    });
  } finally {
    closeSync(fd);
  }
}

async function main(): Promise<void> {
  const why = cannotRunContainers();
  if (why) throw new Error(`cannot run the benchmark: ${why}`);
  const h = new RuntimeHarness();
  try {
    await h.setUp();
    await h.network.ensure('org_bench');
    const layout = await h.runtime.layout();

    // A warm-up Ward instance, whose config.json becomes the bare-crun bundle.
    const warm = await h.start({ uid: 1000 });
    await firstOk(urlFor(warm.attachment!.ipv6));
    const bundle = join(h.runDir, 'bare-bundle');
    await mkdir(bundle, { recursive: true, mode: 0o711 });
    const wardDir = join(h.runDir, 'runtime', 'instances', warm.id);
    for (const f of ['resolv.conf', 'hosts', 'hostname']) await cp(join(wardDir, f), join(bundle, f));
    const config = JSON.parse(await readFile(join(wardDir, 'config.json'), 'utf8')) as OciConfig;
    await h.runtime.destroy(warm.id);
    await h.network.detach(warm.id);

    const bareNet = await h.network.attach({ instanceId: newId('instance'), orgId: 'org_bench' });
    h.ids.add(bareNet.instanceId);
    config.root.path = h.rootfs;
    for (const m of config.mounts) if (m.source.startsWith(wardDir)) m.source = join(bundle, m.source.slice(wardDir.length + 1));
    config.linux.namespaces = config.linux.namespaces.map((n) => (n.type === 'network' ? { type: 'network', path: bareNet.netnsPath } : n));
    const ctx: CrunContext = { crun: 'crun', stateDir: join(h.runDir, 'bare-state'), layout };
    await mkdir(ctx.stateDir, { recursive: true, mode: 0o700 });

    const ward = { start: [] as number[], attach: [] as number[], first200: [] as number[] };
    const bare = { start: [] as number[], first200: [] as number[] };
    for (let i = 0; i < runs; i++) {
      // Ward: attach, then start; measured apart.
      const id = newId('instance');
      h.ids.add(id);
      let t = performance.now();
      const att = await h.network.attach({ instanceId: id, orgId: 'org_bench' });
      ward.attach.push(performance.now() - t);
      const spec = h.spec({ uid: 1000 }, att, id);
      t = performance.now();
      await h.runtime.start(spec);
      ward.start.push(performance.now() - t);
      ward.first200.push(await firstOk(urlFor(att.ipv6)));
      await h.runtime.destroy(id);
      await h.network.detach(id);

      // Bare crun, same config, its own cgroup.
      const bareId = `bare-${i}`;
      config.linux.cgroupsPath = `${h.cgroupParent}/${bareId}`;
      await writeFile(join(bundle, 'config.json'), JSON.stringify(config), { mode: 0o600 });
      t = performance.now();
      const code = await spawnToExit(crunArgv(ctx, ['run', '--detach', '--bundle', bundle, bareId]), join(h.logDir, 'bare.log'));
      if (code !== 0) throw new Error(`bare crun run failed (${code}); see ${join(h.logDir, 'bare.log')}`);
      bare.start.push(performance.now() - t);
      bare.first200.push(await firstOk(urlFor(bareNet.ipv6)));
      await run(crunDeleteArgv(ctx, bareId));
    }

    const row = (name: string, xs: number[]) => `${name.padEnd(34)} p50 ${percentile(xs, 50).toFixed(1).padStart(7)} ms   p95 ${percentile(xs, 95).toFixed(1).padStart(7)} ms`;
    const ratio = (a: number[], b: number[], p: number) => (percentile(a, p) / percentile(b, p)).toFixed(2);
    const total = ward.start.map((s, i) => s + ward.first200[i]!);
    const totalAttach = total.map((s, i) => s + ward.attach[i]!);
    const bareTotal = bare.start.map((s, i) => s + bare.first200[i]!);
    const out = [
      `instance-start: ${runs} runs, cgroups ${layout.mode}, the test rootfs (Node.js ${process.version} HTTP app)`,
      '',
      row('bare crun run -d: start → running', bare.start),
      row('Ward CrunRuntime.start', ward.start),
      row('Ward network attach (before start)', ward.attach),
      row('bare: running → first 200', bare.first200),
      row('Ward: running → first 200', ward.first200),
      row('bare: start → first 200', bareTotal),
      row('Ward: start → first 200', total),
      row('Ward: attach + start → first 200', totalAttach),
      '',
      `Ward / bare, start → running:     p50 ×${ratio(ward.start, bare.start, 50)}   p95 ×${ratio(ward.start, bare.start, 95)}   (overhead p50 ${(percentile(ward.start, 50) - percentile(bare.start, 50)).toFixed(1)} ms; goal ≤ 50 ms)`,
      `Ward / bare, running → first 200: p50 ×${ratio(ward.first200, bare.first200, 50)}   p95 ×${ratio(ward.first200, bare.first200, 95)}`,
      `Ward start → running vs Firecracker to guest init (≤ 125 ms): ×${(percentile(ward.start, 50) / 125).toFixed(2)} at p50`,
      `Ward attach + start → first 200 vs a Fly Machine boot (~300 ms): ×${(percentile(totalAttach, 50) / 300).toFixed(2)} at p50`,
    ];
    console.log(out.join('\n'));
  } finally {
    // Bare containers are not the harness's: remove any a failure left running.
    const bareState = join(h.runDir, 'bare-state');
    const layout = await h.runtime.layout().catch(() => undefined);
    if (layout) {
      const ctx: CrunContext = { crun: 'crun', stateDir: bareState, layout };
      for (let i = 0; i < runs; i++) await run(crunDeleteArgv(ctx, `bare-${i}`), { allowFailure: true });
    }
    await h.cleanup();
  }
}

await main();
