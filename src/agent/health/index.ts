// Health: the checks an app asks for, the checker that runs them per instance, and the registry of
// healthy upstreams per app that the edge reads.
export { checksFor, describeCheck, IMPLICIT_TIMING, probe, probeHttp, probeTcp, type CheckSpec, type ProbeResult } from './checks.ts';
export { FAST_PROBE_MS, NO_CHECKS_SETTLE_MS, HealthChecker, type HealthCheckerOptions, type HealthReport } from './checker.ts';
export { HealthRegistry, type InstanceHealth, type Upstream } from './registry.ts';
