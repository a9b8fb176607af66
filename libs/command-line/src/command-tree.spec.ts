import { CliError } from './cli-error';
import { type CommandSpec, helpText, type Invocation, type OptionValues, type ProgramSpec, resolveInvocation } from './command-tree';
import { EXIT } from './exit-codes';

const ran: OptionValues[] = [];
const leaf: CommandSpec = {
  name: 'quote',
  description: 'quote PCRs',
  options: [
    { flags: '--tpm <device>', description: 'TPM device', defaultValue: '/dev/tpmrm0' },
    { flags: '--out-dir <dir>', description: 'where to write', required: true },
    { flags: '--json', description: 'machine-readable output' },
  ],
  action: async (options) => {
    ran.push(options);
  },
};
const program: ProgramSpec = {
  name: 'agent',
  description: 'the agent',
  version: () => '1.2.3',
  subcommands: [{ name: 'tpm', description: 'TPM diagnostics', subcommands: [leaf] }],
};

function refusal(argv: string[]): CliError {
  try {
    resolveInvocation(program, argv);
  } catch (error) {
    if (error instanceof CliError) {
      return error;
    }
    throw error;
  }
  throw new Error(`${argv.join(' ')} was not refused`);
}

async function run(invocation: Invocation): Promise<void> {
  if (!('run' in invocation)) {
    throw new Error('expected a command to run');
  }
  await invocation.run();
}

describe('command tree (rackseal-agent without commander)', () => {
  beforeEach(() => {
    ran.length = 0;
  });

  it('runs a leaf with its options by camelCase name, defaults applied, in both --flag value and --flag=value forms', async () => {
    await run(resolveInvocation(program, ['tpm', 'quote', '--out-dir', '/tmp/q', '--json']));
    await run(resolveInvocation(program, ['tpm', 'quote', '--out-dir=', '--tpm=swtpm:127.0.0.1:2321']));
    expect(ran).toEqual([
      { tpm: '/dev/tpmrm0', outDir: '/tmp/q', json: true },
      { tpm: 'swtpm:127.0.0.1:2321', outDir: '' },
    ]);
  });

  it('prints help at every level and the version at the top, running nothing', () => {
    expect(resolveInvocation(program, ['--help'])).toEqual({ print: helpText(['agent'], program, true) });
    expect(resolveInvocation(program, ['-V'])).toEqual({ print: '1.2.3\n' });
    expect(resolveInvocation(program, ['tpm', '-h'])).toEqual({ print: helpText(['agent', 'tpm'], program.subcommands![0]!, false) });
    expect(resolveInvocation(program, ['tpm', 'quote', '--json', '--help'])).toEqual({ print: helpText(['agent', 'tpm', 'quote'], leaf, false) });
    expect(ran).toEqual([]);
  });

  it('lays the help out as commander does: usage, description, options with defaults, commands', () => {
    expect(helpText(['agent'], program, true)).toBe(
      'Usage: agent [options] [command]\n\nthe agent\n\nOptions:\n  -V, --version  output the version number\n  -h, --help     display help for command\n\nCommands:\n  tpm  TPM diagnostics\n',
    );
    expect(helpText(['agent', 'tpm', 'quote'], leaf, false)).toBe(
      'Usage: agent tpm quote [options]\n\nquote PCRs\n\nOptions:\n' +
        '  --tpm <device>   TPM device (default: "/dev/tpmrm0")\n' +
        '  --out-dir <dir>  where to write\n' +
        '  --json           machine-readable output\n' +
        '  -h, --help       display help for command\n',
    );
  });

  it.each([
    [['--frobnicate'], "unknown option '--frobnicate' (see agent --help)"],
    [['tpm', 'seal'], "unknown command 'seal' (see agent tpm --help)"],
    [['tpm', 'quote', '--out-dir', 'x', '--frob'], "unknown option '--frob' (see agent tpm quote --help)"],
    [['tpm', 'quote', '--out-dir', 'x', '-V'], "unknown option '-V' (see agent tpm quote --help)"],
    [['tpm', 'quote'], "required option '--out-dir <dir>' not specified (see agent tpm quote --help)"],
    [['tpm', 'quote', '--out-dir'], "option '--out-dir <dir>' argument missing"],
    [['tpm', 'quote', '--out-dir', 'x', '--json=yes'], "option '--json' takes no value"],
    [['tpm', 'quote', '--out-dir', 'x', 'extra'], 'unexpected argument "extra" (see agent tpm quote --help)'],
  ])('refuses %j with exit 2: %s', (argv, message) => {
    const error = refusal(argv);
    expect([error.exitCode, error.message]).toEqual([EXIT.usage, message]);
    expect(ran).toEqual([]);
  });

  it('a group named without a command is a usage error that shows the group help', () => {
    const error = refusal(['tpm']);
    expect(error.exitCode).toBe(EXIT.usage);
    expect(error.message).toBe(`agent tpm needs a command\n\n${helpText(['agent', 'tpm'], program.subcommands![0]!, false).trimEnd()}`);
  });
});
