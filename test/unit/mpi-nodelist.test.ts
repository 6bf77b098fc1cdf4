import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  blockNodesFromEnv, parseHostLines, parseLsbHosts, parseLsbMcpuHosts, parsePeHostfile, parseSlurmNodelist,
} from '../../src/worker/mpi/nodelist.js';

test('Slurm: compressed ranges, lists, zero padding, several names and a suffix', () => {
  assert.deepEqual(parseSlurmNodelist('n[1-3,5]'), ['n1', 'n2', 'n3', 'n5']);
  assert.deepEqual(parseSlurmNodelist('n[1-3,7]'), ['n1', 'n2', 'n3', 'n7']);
  assert.deepEqual(parseSlurmNodelist('gpu[01-03],login1'), ['gpu01', 'gpu02', 'gpu03', 'login1']);
  assert.deepEqual(parseSlurmNodelist('n1'), ['n1']);
  assert.deepEqual(parseSlurmNodelist('nid[00098-00100]'), ['nid00098', 'nid00099', 'nid00100']);
  assert.deepEqual(parseSlurmNodelist('r[1-2]-n[1-2]'), ['r1-n1', 'r1-n2', 'r2-n1', 'r2-n2']);
  assert.deepEqual(parseSlurmNodelist('a[1,1-2],a3'), ['a1', 'a2', 'a3']);
});

test('Slurm: malformed lists fail naming the list', () => {
  assert.throws(() => parseSlurmNodelist('n[1-3'), /n\[1-3.*unbalanced/);
  assert.throws(() => parseSlurmNodelist('n[3-1]'), /runs backwards/);
  assert.throws(() => parseSlurmNodelist('n[a-b]'), /bad range "a-b"/);
});

test('PBS and Cobalt node files: one host per line, repeated per core', () => {
  assert.deepEqual(parseHostLines('c1\nc1\nc1\nc2\nc2\n\nc3\n'), ['c1', 'c2', 'c3']);
});

test('LSF: LSB_MCPU_HOSTS pairs and LSB_HOSTS words', () => {
  assert.deepEqual(parseLsbMcpuHosts('batch1 1 h1 4 h2 4'), ['batch1', 'h1', 'h2']);
  assert.throws(() => parseLsbMcpuHosts('h1 4 h2'), /pairs/);
  assert.throws(() => parseLsbMcpuHosts('h1 four'), /not a slot count/);
  assert.deepEqual(parseLsbHosts('h1 h1 h2 h2 h3'), ['h1', 'h2', 'h3']);
});

test('Grid Engine PE_HOSTFILE: host slots queue processors', () => {
  const text = 'node7.cluster 4 all.q@node7.cluster UNDEFINED\nnode8.cluster 4 all.q@node8.cluster UNDEFINED\n';
  assert.deepEqual(parsePeHostfile(text), ['node7.cluster', 'node8.cluster']);
});

test('blockNodesFromEnv picks the scheduler by its variable and names the variable on errors', () => {
  const files: Record<string, string> = { '/pbs': 'p1\np1\np2\n', '/cobalt': 'c1\nc2\n', '/pe': 'g1 2 q UNDEFINED\n' };
  const read = (p: string): string => {
    if (!(p in files)) throw new Error('ENOENT');
    return files[p];
  };
  assert.deepEqual(blockNodesFromEnv({ SLURM_JOB_NODELIST: 'n[1-3]' }, read).nodes, ['n1', 'n2', 'n3']);
  assert.deepEqual(blockNodesFromEnv({ PBS_NODEFILE: '/pbs' }, read).nodes, ['p1', 'p2']);
  assert.deepEqual(blockNodesFromEnv({ LSB_MCPU_HOSTS: 'h1 2 h2 2', LSB_HOSTS: 'x' }, read).nodes, ['h1', 'h2']);
  assert.deepEqual(blockNodesFromEnv({ LSB_HOSTS: 'h1 h2' }, read).nodes, ['h1', 'h2']);
  assert.deepEqual(blockNodesFromEnv({ COBALT_NODEFILE: '/cobalt' }, read).nodes, ['c1', 'c2']);
  assert.deepEqual(blockNodesFromEnv({ PE_HOSTFILE: '/pe' }, read).nodes, ['g1']);
  assert.deepEqual(blockNodesFromEnv({ FUNCX_NODE_NAME: 'here' }, read).nodes, ['here']);
  assert.throws(() => blockNodesFromEnv({ PBS_NODEFILE: '/missing' }, read), /PBS_NODEFILE=\/missing: cannot read/);
  assert.throws(() => blockNodesFromEnv({ SLURM_JOB_NODELIST: 'n[1-' }, read), /^Error: SLURM_JOB_NODELIST: node list/);
  assert.throws(() => blockNodesFromEnv({ COBALT_NODEFILE: '/empty' }, (p) => (p === '/empty' ? '\n' : '')), /COBALT_NODEFILE names no node/);
});
