// bench/deploy: Ward's own overhead in a deploy. A rolling deploy of 3 instances, and a bluegreen one,
// of examples/hello (built by src/build, uploaded once) onto a real single-node Ward (control plane and
// agent in this process, crun instances through the runtime harness: its own run dir, cgroups, bridge
// and nftables tables, all swept at the end even on failure).
//
//   node bench/deploy/run.ts [--runs 3] [--grace 10]      (root; a benchmark, not a test)
//
// Each run deploys a new release (a changed [env], the same image) over 3 healthy instances and measures
// the wall time from the deploy request to the release's `succeeded`. The issue asks for that time minus
// the health grace periods a deploy must wait. Ward must wait for none: during its grace period a check
// probes fast and the first pass makes the instance healthy (src/agent/health/checker.ts); the grace
// period only forgives failures while the app starts. (Tools whose first check runs after the grace
// period, or that sleep through it, wait one grace per batch: 3 for rolling with max_unavailable 1, 1 for
// bluegreen.) So the grace waited is 0 and the whole wall time is Ward's overhead plus the app's own
// start-up: placing, pulling from the local store, crun and network, the app listening, the first passing
// check, the Deployer's steps. The grace period is set long (10 s) so that a deploy that did wait for it
// would show at once. Printed per strategy: every run, the median, the grace waited and the overhead.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildNodeImage } from '../../src/build/index.ts';
import { cannotRunContainers } from '../../test/integration/runtime-harness.ts';
import { startNode, type WardNode } from '../../test/integration/agent-fixture.ts';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const RUNS = arg('runs', 3);
const GRACE_S = arg('grace', 10);
/** GRACE_WAITS is how many grace periods a deploy waits in Ward: none (see above). */
const GRACE_WAITS = 0;
const INSTANCES = 3;
const APP = 'bench';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** config is ward.toml as the API takes it (parsed TOML): 3 instances, one HTTP check, this strategy. */
function config(strategy: string, version: number): Record<string, unknown> {
  return {
    app: APP,
    env: { PORT: '8080', BENCH_VERSION: String(version) },
    http_service: {
      internal_port: 8080,
      min_instances: INSTANCES,
      checks: [{ path: '/healthz', grace_period: `${GRACE_S}s`, interval: '1s', timeout: '1s' }],
    },
    resources: { memory: '128MB', cpus: 0.5 },
    deploy: { strategy, max_unavailable: 1 },
  };
}

/** deploy makes a release and waits for it to succeed; it returns the wall time in ms. */
async function deploy(node: WardNode, digest: string, strategy: string, version: number): Promise<number> {
  const t0 = performance.now();
  const made = await node.api('POST', `/v1/apps/${APP}/deploy`, { image: digest, config: config(strategy, version), strategy });
  if (made.status !== 201) throw new Error(`deploy refused: ${JSON.stringify(made.body)}`);
  const v = made.body.release.version as number;
  for (;;) {
    const r = await node.api('GET', `/v1/apps/${APP}/releases/${v}`);
    const status = r.body?.release?.status as string | undefined;
    if (status === 'succeeded') break;
    if (status && status !== 'running' && status !== 'pending') throw new Error(`release v${v} ${status}: ${r.body.release.reason}`);
    if (performance.now() - t0 > 300_000) throw new Error(`release v${v} still ${status} after 300 s`);
    await new Promise((res) => setTimeout(res, 50));
  }
  const ms = performance.now() - t0;
  // Let the old release's instances stop before the next run, so runs do not overlap.
  for (;;) {
    const st = await node.api('GET', `/v1/apps/${APP}/status`);
    const others = (st.body.instances as Array<{ release: number; state: string }>).filter((i) => i.release !== v && i.state !== 'stopped' && i.state !== 'failed');
    if (others.length === 0) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  return ms;
}

async function main(): Promise<void> {
  const why = cannotRunContainers();
  if (why) throw new Error(`cannot run the benchmark: ${why}`);
  const tmp = await mkdtemp(join(tmpdir(), 'ward-bench-deploy-'));
  let node: WardNode | undefined;
  try {
    const built = await buildNodeImage({ appDir: join(import.meta.dirname, '..', '..', 'examples', 'hello') }, join(tmp, 'hello.oci.tar'));
    node = await startNode();
    if ((await node.api('POST', '/v1/apps', { name: APP })).status !== 201) throw new Error('cannot create the app');
    const up = await node.upload(APP, await readFile(built.archive), 'oci-archive');
    if (up.status !== 201) throw new Error(`upload failed: ${JSON.stringify(up.body)}`);
    const digest = up.body.image.digest as string;

    let version = 1;
    // The starting point: 3 healthy instances (every strategy's first deploy starts them all at once).
    await deploy(node, digest, 'immediate', version++);

    const graceMs = GRACE_S * 1000;
    // Batches: rolling (max_unavailable 1) replaces one instance at a time, bluegreen starts all at once.
    const results: Array<{ strategy: string; batches: number; runs: number[] }> = [
      { strategy: 'rolling', batches: INSTANCES, runs: [] },
      { strategy: 'bluegreen', batches: 1, runs: [] },
    ];
    for (let i = 0; i < RUNS; i++) {
      for (const r of results) r.runs.push(await deploy(node, digest, r.strategy, version++));
    }

    console.log(`bench/deploy: ${INSTANCES} instances of examples/hello, health grace ${GRACE_S}s, ${RUNS} runs each (node ${process.version})`);
    console.log('strategy    batches   runs (wall, s)              median wall   grace waited   Ward overhead (median)   per batch');
    for (const r of results) {
      const wall = median(r.runs);
      const grace = GRACE_WAITS * r.batches * graceMs;
      console.log(
        `${r.strategy.padEnd(11)} ${String(r.batches).padStart(7)}   ${r.runs.map((m) => (m / 1000).toFixed(2)).join(', ').padEnd(27)} ${(wall / 1000).toFixed(2).padStart(8)} s   ${`${(grace / 1000).toFixed(0)} s`.padStart(12)}   ${((wall - grace) / 1000).toFixed(2).padStart(18)} s   ${((wall - grace) / r.batches / 1000).toFixed(2).padStart(7)} s`,
      );
    }
    console.log(`(grace ${GRACE_S}s is not waited: checks probe during it and the first pass counts; other tools would wait ${INSTANCES} × ${GRACE_S}s for rolling, 1 × ${GRACE_S}s for bluegreen)`);
  } finally {
    await node?.cleanup();
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
