import { parseArgs } from 'node:util';
import { CliError } from './cli-error';

/**
 * A command-line program for `rackseal-agent`, parsed with Node's own `util.parseArgs`. The agent
 * starts at boot from an initramfs, where its start must cost little more than Node's: commander
 * alone (it loads node:child_process and ~125 KB of code) takes longer than that whole budget
 * (bench/README.md, agent-startup), so the agent describes its commands here and loads each
 * command's code only when that command runs. The operator CLI keeps commander.
 *
 * The surface follows commander's, so both programs read alike: `-h/--help` at every level,
 * `-V/--version` at the top, `--flag <value>`/`--flag=<value>`, defaults shown in the help, and a
 * usage mistake exits 2 naming the option.
 */
export interface OptionSpec {
  /** `--tpm <device>` or `--json`: a placeholder makes it take a value. */
  readonly flags: string;
  readonly description: string;
  readonly defaultValue?: string;
  readonly required?: boolean;
}

export type OptionValues = Record<string, string | boolean | undefined>;

export interface CommandSpec {
  readonly name: string;
  readonly description: string;
  readonly options?: readonly OptionSpec[];
  /** A group (`tpm`) has subcommands; a leaf (`tpm info`) has an action. */
  readonly subcommands?: readonly CommandSpec[];
  /** Gets the options by camelCase name (`--out-dir` → `outDir`), defaults applied. */
  readonly action?: (options: OptionValues) => Promise<void>;
}

export interface ProgramSpec extends CommandSpec {
  /** Asked for by `--version` only, so that other runs do not read it. */
  readonly version: () => string;
}

/** `--out-dir <dir>` → { long: 'out-dir', key: 'outDir', takesValue: true }. */
function parseFlags(flags: string): { long: string; key: string; takesValue: boolean } {
  const match = /^--([a-z][a-z0-9-]*)(?: <[^>]+>)?$/.exec(flags);
  if (match === null) {
    throw new Error(`bad option flags ${JSON.stringify(flags)}`);
  }
  const long = match[1]!;
  return { long, key: long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), takesValue: flags.includes('<') };
}

function columns(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`);
}

/** The help of one command, laid out as commander lays it out. */
export function helpText(path: readonly string[], command: CommandSpec, isRoot: boolean): string {
  const usage = `Usage: ${path.join(' ')} [options]${command.subcommands === undefined ? '' : ' [command]'}`;
  const options: [string, string][] = (command.options ?? []).map((o) => [
    o.flags,
    o.defaultValue === undefined ? o.description : `${o.description} (default: ${JSON.stringify(o.defaultValue)})`,
  ]);
  if (isRoot) {
    options.push(['-V, --version', 'output the version number']);
  }
  options.push(['-h, --help', 'display help for command']);
  const lines = [usage, '', command.description, '', 'Options:', ...columns(options)];
  if (command.subcommands !== undefined) {
    lines.push('', 'Commands:', ...columns(command.subcommands.map((c) => [c.name, c.description])));
  }
  return `${lines.join('\n')}\n`;
}

/** What running the program comes to: text to print, or a command to run. */
export type Invocation = { readonly print: string } | { readonly run: () => Promise<void> };

/** Finds the command argv names and parses its options; usage mistakes throw CliError (exit 2). */
export function resolveInvocation(program: ProgramSpec, argv: readonly string[]): Invocation {
  const path = [program.name];
  let command: CommandSpec = program;
  let rest = [...argv];
  for (;;) {
    if (command.action !== undefined) {
      return leafInvocation(path, command, rest);
    }
    const [first, ...others] = rest;
    if (first === undefined) {
      throw CliError.usage(`${path.join(' ')} needs a command\n\n${helpText(path, command, command === program)}`.trimEnd());
    }
    if (first === '-h' || first === '--help') {
      return { print: helpText(path, command, command === program) };
    }
    if (command === program && (first === '-V' || first === '--version')) {
      return { print: `${program.version()}\n` };
    }
    if (first.startsWith('-')) {
      throw CliError.usage(`unknown option '${first}' (see ${path.join(' ')} --help)`);
    }
    const next = command.subcommands?.find((c) => c.name === first);
    if (next === undefined) {
      throw CliError.usage(`unknown command '${first}' (see ${path.join(' ')} --help)`);
    }
    path.push(next.name);
    command = next;
    rest = others;
  }
}

function leafInvocation(path: readonly string[], command: CommandSpec, argv: readonly string[]): Invocation {
  const specs = (command.options ?? []).map((spec) => ({ spec, ...parseFlags(spec.flags) }));
  const { tokens } = parseArgs({
    args: [...argv],
    options: Object.fromEntries([['help', { type: 'boolean', short: 'h' }], ...specs.map((s) => [s.long, { type: s.takesValue ? 'string' : 'boolean' }])]),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const see = `(see ${path.join(' ')} --help)`;
  const values: OptionValues = Object.fromEntries(specs.filter((s) => s.spec.defaultValue !== undefined).map((s) => [s.key, s.spec.defaultValue]));
  for (const token of tokens) {
    if (token.kind === 'positional') {
      throw CliError.usage(`unexpected argument ${JSON.stringify(token.value)} ${see}`);
    }
    if (token.kind !== 'option') {
      continue;
    }
    if (token.name === 'help') {
      return { print: helpText(path, command, false) };
    }
    const option = specs.find((s) => s.long === token.name);
    if (option === undefined || token.rawName !== `--${option.long}`) {
      throw CliError.usage(`unknown option '${token.rawName}' ${see}`);
    }
    if (option.takesValue && token.value === undefined) {
      throw CliError.usage(`option '${option.spec.flags}' argument missing`);
    }
    if (!option.takesValue && token.value !== undefined) {
      throw CliError.usage(`option '${option.spec.flags}' takes no value`);
    }
    values[option.key] = option.takesValue ? token.value : true;
  }
  const missing = specs.find((s) => s.spec.required === true && values[s.key] === undefined);
  if (missing !== undefined) {
    throw CliError.usage(`required option '${missing.spec.flags}' not specified ${see}`);
  }
  const action = command.action!;
  return { run: () => action(values) };
}
