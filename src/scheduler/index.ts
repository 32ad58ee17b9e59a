/**
 * The scheduler: placement of instances on hosts, the deploy strategies (rolling, canary, bluegreen,
 * immediate) and the Deployer that drives a release through its strategy.
 */
export { Deployer, placeInstances, type DeployerLogger, type DeployerLogs, type DeployerOptions } from './deployer.ts';
export { bluegreenStrategy, immediateStrategy } from './all-at-once.ts';
export { batchSize, canaryStrategy, rollingStrategy } from './rolling.ts';
export { instanceCount, place, volumeHost, type PlacementRequest } from './placement.ts';
export { checkFresh, describeInstance, failureOf, isHealthy, targetOf, type DeployStep, type DeployStrategy, type DeployView, type Restore } from './strategy.ts';
