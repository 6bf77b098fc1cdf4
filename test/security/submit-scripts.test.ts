/**
 * Values that reach a shell cannot inject commands: scheduler names (partition, queue, account...) with shell
 * characters are refused with a ConfigError naming the field, directly and through `funcx-endpoint render`;
 * environment values and the user's own quoted worker_init lines are rendered so that `bash -n` accepts the
 * script, and running it (LocalProvider for real, the Slurm template with bash) leaves every value intact
 * and runs nothing hidden in them; ShellFunction's `{name}` values stay one word.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { SlurmProvider } from '../../providers/slurm.js';
import { PBSProProvider } from '../../providers/pbspro.js';
import { TorqueProvider } from '../../providers/torque.js';
import { CobaltProvider } from '../../providers/cobalt.js';
import { LSFProvider } from '../../providers/lsf.js';
import { GridEngineProvider } from '../../providers/gridengine.js';
import { LocalProvider } from '../../providers/local.js';
import { LocalChannel } from '../../providers/channels/local.js';
import { SimpleLauncher } from '../../launchers/simple.js';
import { shellQuote } from '../../providers/script-values.js';
import { renderCommand } from '../../src/sdk/functions.js';
import type { BlockRequest } from '../../providers/provider.js';
import { cliPath, tmpDir, until } from './harness.js';

const HOSTILE = ['debug; touch /tmp/pwned', '$(touch /tmp/pwned)', '`touch /tmp/pwned`', 'a b', 'x\ntouch /tmp/pwned', "q'uote", 'd"q', 'a|b', 'a&b', '>out', 'a\\b'];

/** Every scheduler name option, by provider. */
const NAME_FIELDS: Array<[string, (o: Record<string, unknown>) => unknown, string[]]> = [
  ['SlurmProvider', (o) => new SlurmProvider(o), ['partition', 'account', 'qos', 'constraint']],
  ['PBSProProvider', (o) => new PBSProProvider(o), ['queue', 'account']],
  ['TorqueProvider', (o) => new TorqueProvider(o), ['queue', 'account']],
  ['CobaltProvider', (o) => new CobaltProvider(o), ['queue', 'account']],
  ['LSFProvider', (o) => new LSFProvider(o), ['queue', 'project']],
  ['GridEngineProvider', (o) => new GridEngineProvider(o), ['queue', 'project', 'parallel_environment']],
];

test('scheduler names with shell characters are a ConfigError naming the field, for every provider', () => {
  for (const [provider, make, fields] of NAME_FIELDS) {
    for (const field of fields) {
      for (const value of HOSTILE) {
        assert.throws(() => make({ [field]: value }), (err: unknown) => {
          assert.ok(err instanceof ConfigError, `${provider} ${field}=${JSON.stringify(value)}: ${String(err)}`);
          assert.match(err.message, new RegExp(`provider\\.${field}`));
          return true;
        }, `${provider} accepted ${field}=${JSON.stringify(value)}`);
      }
    }
  }
  // Raw header lines must all be directives: a shell line among them (or after a hidden newline) is refused.
  for (const lines of [['#SBATCH --gres=gpu:1', 'touch /tmp/pwned'], '#SBATCH --gres=gpu:1\ntouch /tmp/pwned', ['# SBATCH x; touch /tmp/pwned']]) {
    assert.throws(() => new SlurmProvider({ scheduler_options: lines }), (err: unknown) => err instanceof ConfigError && /scheduler_options/.test(err.message));
  }
});

test('funcx-endpoint render refuses a profile whose partition would run a command, naming the field', () => {
  const home = tmpDir('render');
  const marker = join(home, 'pwned');
  mkdirSync(join(home, 'evil'), { recursive: true });
  writeFileSync(join(home, 'package.json'), '{"type":"module"}\n');
  writeFileSync(join(home, 'evil', 'config.ts'), `import { Config, SlurmProvider } from 'funcx-endpoint';
export default new Config({ provider: new SlurmProvider({ partition: 'debug; touch ${marker}' }) });
`);
  const r = spawnSync(process.execPath, [cliPath('endpoint'), 'render', 'evil'], { env: { ...process.env, FUNCX_HOME: home }, encoding: 'utf8', timeout: 30_000 });
  assert.notEqual(r.status, 0, `render succeeded:\n${r.stdout}`);
  assert.match(r.stderr, /provider\.partition/);
  assert.match(r.stderr, /not a valid name/);
  assert.equal(r.stdout.includes('#SBATCH'), false, 'no script was printed');
  assert.equal(existsSync(marker), false);
});

/** Environment values a profile or the engine might export, each trying to escape its quotes. */
function nastyEnv(marker: string): Record<string, string> {
  return {
    SQ: `it's'; touch ${marker}; echo '`,
    DQ: `say "hi"; touch ${marker}`,
    SUB: `$(touch ${marker})`,
    TICK: `\`touch ${marker}\``,
    NL: `line1\ntouch ${marker}\n`,
    BS: 'back\\slash\\',
    VARS: '$HOME ${PATH} $((1+1)) !!',
    SEMI: `;touch ${marker};#`,
    GLOB: '* ? [a]',
    EMPTY: '',
    UNICODE: 'é 漢 \u2028',
  };
}

/** The user's own worker_init lines, written with shell quoting: kept verbatim, they mean what they say. */
function quotedWorkerInit(marker: string): { lines: string[]; expected: Record<string, string> } {
  return {
    lines: [
      `export WI_SINGLE='single; $(touch ${marker}) \`x\`'`,
      `export WI_DOUBLE="double \\"quoted\\" it's; \\$(touch ${marker})"`,
      'WI_PLAIN=plain; export WI_PLAIN',
    ],
    expected: { WI_SINGLE: `single; $(touch ${marker}) \`x\``, WI_DOUBLE: `double "quoted" it's; $(touch ${marker})`, WI_PLAIN: 'plain' },
  };
}

/** A block command that writes its whole environment as JSON to `out`. */
function dumpEnvCommand(out: string): string {
  return `${shellQuote(process.execPath)} -e ${shellQuote("require('fs').writeFileSync(process.argv[1], JSON.stringify(process.env))")} ${shellQuote(out)}`;
}

function checkDump(out: string, env: Record<string, string>, expected: Record<string, string>, marker: string, where: string): void {
  const seen = JSON.parse(readFileSync(out, 'utf8')) as Record<string, string>;
  for (const [name, value] of Object.entries({ ...env, ...expected })) assert.equal(seen[name], value, `${where}: ${name}`);
  assert.equal(existsSync(marker), false, `${where}: a command hidden in a value ran`);
}

test('env values and quoted worker_init lines: bash -n accepts the scripts, and running them injects nothing', async () => {
  const dir = tmpDir('scripts');
  const marker = join(dir, 'pwned');
  const env = nastyEnv(marker);
  const init = quotedWorkerInit(marker);

  // Slurm's real template (the simple launcher, so bash alone can run it here; #SBATCH lines are comments).
  const slurm = new SlurmProvider({ partition: 'debug', account: 'proj-1', worker_init: init.lines, launcher: new SimpleLauncher(), channel: new LocalChannel({ script_dir: dir }) });
  const slurmOut = join(dir, 'slurm-env.json');
  const request = (command: string): BlockRequest => ({ blockId: '7', command, jobName: 'funcx-sec-7', env, nodesPerBlock: 1, walltimeS: 600 });
  const slurmScript = await slurm.render(request(dumpEnvCommand(slurmOut)));
  const slurmFile = join(dir, 'slurm.sh');
  writeFileSync(slurmFile, slurmScript);
  execFileSync('bash', ['-n', slurmFile]);
  assert.match(slurmScript, /^#SBATCH --partition=debug$/m);
  for (const line of init.lines) assert.ok(slurmScript.includes(`\n${line}\n`), `worker_init line kept verbatim: ${line}`);
  execFileSync('bash', [slurmFile], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir } });
  checkDump(slurmOut, env, init.expected, marker, 'the Slurm script run by bash');

  // LocalProvider: rendered, checked, then submitted and run for real.
  const local = new LocalProvider({ worker_init: init.lines, channel: new LocalChannel({ script_dir: dir }) });
  const localOut = join(dir, 'local-env.json');
  const localScript = await local.render(request(dumpEnvCommand(localOut)));
  writeFileSync(join(dir, 'local.sh'), localScript);
  execFileSync('bash', ['-n', join(dir, 'local.sh')]);
  const block = await local.submit(request(dumpEnvCommand(localOut)));
  try {
    await until('the LocalProvider block to write its environment', async () => existsSync(localOut) && (await local.status([block.jobId])).get(block.jobId)?.state !== 'running');
    assert.equal((await local.status([block.jobId])).get(block.jobId)?.state, 'completed', readFileSync(block.stdoutPath!, 'utf8'));
    checkDump(localOut, env, init.expected, marker, 'the LocalProvider block');
  } finally {
    await local.cancel([block.jobId]);
    await local.close();
  }
});

test("ShellFunction {name} values stay one word when /bin/sh runs the command", () => {
  const dir = tmpDir('shellfn');
  const marker = join(dir, 'pwned');
  for (const value of Object.values(nastyEnv(marker))) {
    const command = renderCommand('printf %s {value}', { value });
    const out = execFileSync('/bin/sh', ['-c', command], { encoding: 'utf8' });
    assert.equal(out, value);
  }
  assert.equal(existsSync(marker), false);
});
