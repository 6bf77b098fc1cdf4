/**
 * config.yaml profiles: the same Config, written as data. Objects with a `type` become providers, launchers
 * and channels:
 *
 *   provider:
 *     type: slurm
 *     partition: debug
 *     launcher: { type: srun }
 *     channel: { type: ssh, hostname: login.example.org }
 */
import { ConfigError } from '../errors.js';
import { Config, type ConfigOptions } from './config.js';
import { LocalProvider } from '../../providers/local.js';
import { SlurmProvider } from '../../providers/slurm.js';
import { PBSProProvider } from '../../providers/pbspro.js';
import { TorqueProvider } from '../../providers/torque.js';
import { CobaltProvider } from '../../providers/cobalt.js';
import { LSFProvider } from '../../providers/lsf.js';
import { GridEngineProvider } from '../../providers/gridengine.js';
import { LocalChannel } from '../../providers/channels/local.js';
import { SSHChannel } from '../../providers/channels/ssh.js';
import { SimpleLauncher } from '../../launchers/simple.js';
import { SingleNodeLauncher } from '../../launchers/single-node.js';
import { SrunLauncher } from '../../launchers/srun.js';
import { SrunMPILauncher } from '../../launchers/srun-mpi.js';
import { MpiExecLauncher } from '../../launchers/mpiexec.js';
import { MpiRunLauncher } from '../../launchers/mpirun.js';
import { AprunLauncher } from '../../launchers/aprun.js';
import { JsrunLauncher } from '../../launchers/jsrun.js';
import { GnuParallelLauncher } from '../../launchers/gnu-parallel.js';
import { WrappedLauncher } from '../../launchers/wrapped.js';

type Ctor = new (options: never) => unknown;

const PROVIDERS: Record<string, Ctor> = {
  local: LocalProvider, slurm: SlurmProvider, pbspro: PBSProProvider, torque: TorqueProvider,
  cobalt: CobaltProvider, lsf: LSFProvider, gridengine: GridEngineProvider,
};
const LAUNCHERS: Record<string, Ctor> = {
  simple: SimpleLauncher, 'single-node': SingleNodeLauncher, srun: SrunLauncher, 'srun-mpi': SrunMPILauncher,
  mpiexec: MpiExecLauncher, mpirun: MpiRunLauncher, aprun: AprunLauncher, jsrun: JsrunLauncher,
  'gnu-parallel': GnuParallelLauncher, wrapped: WrappedLauncher,
};
const CHANNELS: Record<string, Ctor> = { local: LocalChannel, ssh: SSHChannel };

function build(kind: string, table: Record<string, Ctor>, value: unknown, where: string): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(`${where}: expected a mapping with a "type"`);
  const { type, ...options } = value as Record<string, unknown>;
  const Class = typeof type === 'string' ? table[type] : undefined;
  if (!Class) throw new ConfigError(`${where}.type: unknown ${kind} ${JSON.stringify(type)} (known: ${Object.keys(table).join(', ')})`);
  return new Class(options as never);
}

/** Build a Config from the parsed YAML document; errors are prefixed with `file`. */
export function configFromYaml(doc: unknown, file: string): Config {
  try {
    if (doc === null || doc === undefined) return new Config();
    if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError('expected a mapping at the top level');
    const options = { ...(doc as Record<string, unknown>) };
    if (options.provider !== undefined) {
      const provider = { ...(options.provider as Record<string, unknown>) };
      if (provider.launcher !== undefined) provider.launcher = build('launcher', LAUNCHERS, provider.launcher, 'provider.launcher');
      if (provider.channel !== undefined) provider.channel = build('channel', CHANNELS, provider.channel, 'provider.channel');
      options.provider = build('provider', PROVIDERS, provider, 'provider');
    }
    return new Config(options as ConfigOptions);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${file}: ${err.message}`, err.suggestions);
    throw err;
  }
}
