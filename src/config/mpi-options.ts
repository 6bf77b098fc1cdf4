/**
 * The engine's MPI mode: `engine: { mode: 'mpi', mpi_launcher: 'mpirun' }`.
 *
 * A mode of the one engine, not an engine class of its own (a choice): the interchange, the wire protocol,
 * the providers, the strategy and the endpoint's lifecycle stay the same; what changes is that a block runs
 * one manager that holds the block's node list and packs tasks onto disjoint nodes, that the endpoint refuses
 * at once a task asking for more nodes than a block has, and that the strategy counts nodes, not worker slots.
 * A second class would duplicate the lifecycle for those three differences.
 */
import { ConfigError } from '../errors.js';
import { DEFAULTS } from './defaults.js';
import { fieldError } from './field-error.js';

export const ENGINE_MODES = ['htex', 'mpi'] as const;
export type EngineMode = (typeof ENGINE_MODES)[number];
export const MPI_LAUNCHER_NAMES = ['srun', 'mpiexec', 'mpirun', 'aprun', 'jsrun'] as const;
export type MpiLauncherChoice = (typeof MPI_LAUNCHER_NAMES)[number];

/** Fields of the `engine` section this file owns. */
export const MPI_ENGINE_FIELDS = ['mode', 'mpi_launcher', 'mpi_launcher_overrides'] as const;

export interface MpiEngineOptions {
  /** "htex": managers per node, tasks in worker slots; "mpi": one manager per block packing tasks onto nodes. @default "htex" */
  mode?: EngineMode;
  /** The launcher MPI tasks run under (`FUNCX_MPI_PREFIX`). @default "mpiexec" */
  mpi_launcher?: MpiLauncherChoice;
  /** One line appended to every MPI prefix, e.g. `--mca btl self,tcp`. @default "" */
  mpi_launcher_overrides?: string;
}

export interface ResolvedMpiOptions {
  launcher: MpiLauncherChoice;
  overrides: string;
}

/** Check the MPI fields; `mpi` is set only in mode "mpi". Errors name `${where}.field`. */
export function resolveMpiOptions(o: Record<string, unknown>, where: string): { mode: EngineMode; mpi?: ResolvedMpiOptions } {
  const d = DEFAULTS.engine;
  const mode = (o.mode ?? d.mode) as EngineMode;
  if (!ENGINE_MODES.includes(mode)) throw fieldError(`${where}.mode`, ENGINE_MODES.join(' | '), o.mode);
  const launcher = (o.mpi_launcher ?? d.mpi_launcher) as MpiLauncherChoice;
  if (!MPI_LAUNCHER_NAMES.includes(launcher)) throw fieldError(`${where}.mpi_launcher`, MPI_LAUNCHER_NAMES.join(' | '), o.mpi_launcher);
  const overrides = o.mpi_launcher_overrides ?? d.mpi_launcher_overrides;
  if (typeof overrides !== 'string' || /[\n\r\0]/.test(overrides)) {
    throw fieldError(`${where}.mpi_launcher_overrides`, 'one line of flags', o.mpi_launcher_overrides);
  }
  if (mode !== 'mpi') {
    const stray = (['mpi_launcher', 'mpi_launcher_overrides'] as const).find((f) => o[f] !== undefined);
    if (stray) throw new ConfigError(`${where}.${stray}: only used with ${where}.mode 'mpi' (mode is ${JSON.stringify(mode)})`);
    return { mode };
  }
  return { mode, mpi: { launcher, overrides: overrides.trim() } };
}
