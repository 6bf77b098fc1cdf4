/** What a launcher needs to know about the block it starts managers in. */
export interface LaunchContext {
  /** Nodes in the block. */
  nodesPerBlock: number;
  /** Managers (copies of the command) per node; normally 1. */
  tasksPerNode: number;
  /** Cores per node, when the provider knows it (jsrun -c, aprun -d). */
  coresPerNode?: number;
  /** GPUs per node, when known (jsrun -g). */
  gpusPerNode?: number;
}

/**
 * A launcher turns the manager command into the shell line that runs it once per node of a block
 * (or tasksPerNode times per node). It knows only its own command line.
 */
export interface Launcher {
  readonly name: string;
  wrap(command: string, ctx: LaunchContext): string;
}
