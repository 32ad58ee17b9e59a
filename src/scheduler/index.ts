/**
 * The scheduler: placement of instances on hosts, deploy strategies and the Deployer that drives a
 * release through its strategy. Issue "Runtime" brings `immediate`; issue "Deploys" adds rolling,
 * canary and bluegreen as further DeployStrategy implementations.
 */
export { Deployer, type DeployerLogger, type DeployerOptions } from './deployer.ts';
export { immediateStrategy } from './immediate.ts';
export { instanceCount, place, type PlacementRequest } from './placement.ts';
export { describeInstance, failureOf, type DeployStep, type DeployStrategy, type DeployView } from './strategy.ts';
