/**
 * The nodes of the block this manager runs in, from what each scheduler puts in a job's environment:
 * Slurm's compressed `SLURM_JOB_NODELIST` (`n[1-3,7],gpu[01-02]`), PBS's `PBS_NODEFILE`, LSF's
 * `LSB_MCPU_HOSTS` / `LSB_HOSTS`, Cobalt's `COBALT_NODEFILE` and Grid Engine's `PE_HOSTFILE`. Pure parsers
 * (the file readers take the file's text) so each is tested without a scheduler.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/** Unique names in first-seen order (host files repeat a host once per core or slot). */
function unique(names: Iterable<string>): string[] {
  return [...new Set([...names].map((n) => n.trim()).filter(Boolean))];
}

/** Split on commas that are not inside brackets. */
function splitTop(list: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (c === '[') depth++;
    else if (c === ']') {
      if (--depth < 0) throw new Error(`node list ${JSON.stringify(list)}: unbalanced ']' at ${i}`);
    } else if (c === ',' && depth === 0) {
      out.push(list.slice(start, i));
      start = i + 1;
    }
  }
  if (depth !== 0) throw new Error(`node list ${JSON.stringify(list)}: unbalanced '['`);
  out.push(list.slice(start));
  return out.map((s) => s.trim()).filter(Boolean);
}

/** Expand one host expression: `n[1-3,7]`, `rack[1-2]-n[01-02]`, `login1`. */
function expandOne(expr: string, whole: string): string[] {
  const open = expr.indexOf('[');
  if (open < 0) return [expr];
  const close = expr.indexOf(']', open);
  if (close < 0) throw new Error(`node list ${JSON.stringify(whole)}: unbalanced '['`);
  const prefix = expr.slice(0, open);
  const rest = expandOne(expr.slice(close + 1), whole);
  const out: string[] = [];
  for (const part of expr.slice(open + 1, close).split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`node list ${JSON.stringify(whole)}: bad range ${JSON.stringify(part)}`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new Error(`node list ${JSON.stringify(whole)}: range ${part} runs backwards`);
    if (hi - lo > 100_000) throw new Error(`node list ${JSON.stringify(whole)}: range ${part} is too long`);
    const width = m[1].length;
    for (let i = lo; i <= hi; i++) {
      const n = String(i).padStart(width, '0');
      for (const r of rest) out.push(prefix + n + r);
    }
  }
  return out;
}

/** Slurm's compressed host list: `n[1-3,7],gpu[01-02],login1` → n1 n2 n3 n7 gpu01 gpu02 login1. */
export function parseSlurmNodelist(list: string): string[] {
  return unique(splitTop(list).flatMap((e) => expandOne(e, list)));
}

/** A host file with one host per line, repeated per core (PBS_NODEFILE, COBALT_NODEFILE). */
export function parseHostLines(text: string): string[] {
  return unique(text.split('\n').map((l) => l.replace(/#.*/, '')));
}

/** LSF's `LSB_MCPU_HOSTS`: pairs of host and slot count, `"h1 4 h2 4"`. */
export function parseLsbMcpuHosts(value: string): string[] {
  const words = value.trim().split(/\s+/).filter(Boolean);
  if (words.length % 2 !== 0) throw new Error(`LSB_MCPU_HOSTS ${JSON.stringify(value)}: expected pairs of host and slot count`);
  const hosts: string[] = [];
  for (let i = 0; i < words.length; i += 2) {
    if (!/^\d+$/.test(words[i + 1])) throw new Error(`LSB_MCPU_HOSTS ${JSON.stringify(value)}: ${JSON.stringify(words[i + 1])} is not a slot count`);
    hosts.push(words[i]);
  }
  return unique(hosts);
}

/** LSF's `LSB_HOSTS`: one word per slot, `"h1 h1 h2 h2"`. */
export function parseLsbHosts(value: string): string[] {
  return unique(value.split(/\s+/));
}

/** Grid Engine's `PE_HOSTFILE`: lines `host slots queue processors`. */
export function parsePeHostfile(text: string): string[] {
  return unique(text.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? ''));
}

/** Where the node list came from, for logs and status. */
export interface BlockNodes {
  nodes: string[];
  source: string;
}

/**
 * The block's nodes from the environment, in the order schedulers are recognised; a plain host (no
 * scheduler) is a block of one node, this host.
 * @throws Error naming the variable (and file) that could not be read or parsed.
 */
export function blockNodesFromEnv(env: NodeJS.ProcessEnv = process.env, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): BlockNodes {
  const fromFile = (variable: string, parse: (text: string) => string[]): BlockNodes => {
    const path = env[variable]!;
    let text: string;
    try {
      text = readFile(path);
    } catch (err) {
      throw new Error(`${variable}=${path}: cannot read the node file: ${(err as Error).message}`);
    }
    return { nodes: parse(text), source: `${variable}=${path}` };
  };
  const attempt = (variable: string, get: () => BlockNodes): BlockNodes => {
    let r: BlockNodes;
    try {
      r = get();
    } catch (err) {
      const m = (err as Error).message;
      throw new Error(m.startsWith(variable) ? m : `${variable}: ${m}`);
    }
    if (r.nodes.length === 0) throw new Error(`${variable} names no node`);
    return r;
  };
  if (env.SLURM_JOB_NODELIST) return attempt('SLURM_JOB_NODELIST', () => ({ nodes: parseSlurmNodelist(env.SLURM_JOB_NODELIST!), source: 'SLURM_JOB_NODELIST' }));
  if (env.PBS_NODEFILE) return attempt('PBS_NODEFILE', () => fromFile('PBS_NODEFILE', parseHostLines));
  if (env.LSB_MCPU_HOSTS) return attempt('LSB_MCPU_HOSTS', () => ({ nodes: parseLsbMcpuHosts(env.LSB_MCPU_HOSTS!), source: 'LSB_MCPU_HOSTS' }));
  if (env.LSB_HOSTS) return attempt('LSB_HOSTS', () => ({ nodes: parseLsbHosts(env.LSB_HOSTS!), source: 'LSB_HOSTS' }));
  if (env.COBALT_NODEFILE) return attempt('COBALT_NODEFILE', () => fromFile('COBALT_NODEFILE', parseHostLines));
  if (env.PE_HOSTFILE) return attempt('PE_HOSTFILE', () => fromFile('PE_HOSTFILE', parsePeHostfile));
  return { nodes: [env.FUNCX_NODE_NAME || hostname()], source: 'this host (no scheduler node list in the environment)' };
}
