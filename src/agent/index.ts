/**
 * The agent's public surface: the Agent (reconcile loop), its control-plane link for single-node mode,
 * the hooks of the instance runner, health checks and the upstream registry, and the log journal. The
 * runtime (./runtime) and network (./network) have their own public surfaces, re-exported here for
 * callers that compose an agent.
 */
export { Agent, hostCapacity, type AgentOptions, type DnsPublisher } from './agent.ts';
export { StoreControlPlane, assignedRelease, type StoreControlPlaneOptions } from './control-plane.ts';
export { InstanceSupervisor, LAST_LOG_LINES, type StateFile, type SupervisorDeps, type SupervisorState } from './supervisor.ts';
export { DEFAULT_RESTART, backoffMs, decideRestart, describeExit, type RestartDecision, type RestartSettings, type RunHistory } from './restart-policy.ts';
export { commandOf, instanceEnv, platformEnv, resolveUser } from './spec.ts';
export * from './types.ts';
export * from './hooks/index.ts';
export * from './health/index.ts';
export * from './logs/index.ts';
export * from './volumes/index.ts';
