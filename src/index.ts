/**
 * The public surface: what a `config.ts` profile and an SDK user import from 'funcx-endpoint'.
 */
export { Config, type ConfigOptions, type StrategyOptions } from './config/config.js';
export type { EngineOptions } from './config/engine-options.js';
export { addressByHostname, addressByInterface, addressByRoute } from './config/addresses.js';

export { LocalProvider, type LocalProviderOptions } from '../providers/local.js';
export { SlurmProvider, type SlurmProviderOptions } from '../providers/slurm.js';
export { PBSProProvider, type PBSProProviderOptions } from '../providers/pbspro.js';
export { TorqueProvider, type TorqueProviderOptions } from '../providers/torque.js';
export { CobaltProvider, type CobaltProviderOptions } from '../providers/cobalt.js';
export { LSFProvider, type LSFProviderOptions } from '../providers/lsf.js';
export { GridEngineProvider, type GridEngineProviderOptions } from '../providers/gridengine.js';
export type { ExecutionProvider, BlockState } from '../providers/provider.js';

export { LocalChannel } from '../providers/channels/local.js';
export { SSHChannel } from '../providers/channels/ssh.js';

export { SimpleLauncher } from '../launchers/simple.js';
export { SingleNodeLauncher } from '../launchers/single-node.js';
export { SrunLauncher } from '../launchers/srun.js';
export { SrunMPILauncher } from '../launchers/srun-mpi.js';
export { MpiExecLauncher } from '../launchers/mpiexec.js';
export { MpiRunLauncher } from '../launchers/mpirun.js';
export { AprunLauncher } from '../launchers/aprun.js';
export { JsrunLauncher } from '../launchers/jsrun.js';
export { GnuParallelLauncher } from '../launchers/gnu-parallel.js';
export { WrappedLauncher } from '../launchers/wrapped.js';

export { RemoteError } from './protocol/payload.js';
export { FuncxError, ConfigError } from './errors.js';

export { FuncXClient, type FuncXClientOptions, type TaskResult } from './sdk/client.js';
export { ShellFunction, MPIFunction, withResources } from './sdk/functions.js';
export { checkResourceSpec, ResourceSpecError, type ResourceSpec, type ResourceSpecification } from './protocol/resource-spec.js';
