import { type CliProgram, runAgentCliAsync, runRacksealCliAsync } from './cli-runner';

/**
 * Command lines of `rackseal` and `rackseal-agent` written down for people (the operator guide, the
 * README, compose's scripts), checked against the built programs' own `--help`: the subcommand path
 * must exist, and every flag used must be one that path's help lists. A renamed subcommand or flag
 * then fails the test that wrote it down, instead of an operator following it.
 */

/** One command line found in a document: where, the program, and its words after the program. */
export interface DocumentedCommand {
  readonly source: string;
  readonly line: number;
  readonly program: CliProgram;
  readonly words: readonly string[];
  readonly text: string;
}

// The program name as a word in command position: at the start, after an assignment, a bin
// directory (/usr/bin/rackseal-agent), `$(`, or a shell separator; followed by a space or the end.
// A state dir such as /var/lib/rackseal-agent is not a command.
const PROGRAM = /(?:^|[\s;|&(=]|\/bin\/)(rackseal-agent|rackseal)(?=\s|$)/g;

/** The lines inside ``` fences of a Markdown text (any language), with their 1-based line numbers. */
export function fencedLines(markdown: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let inside = false;
  markdown.split('\n').forEach((text, index) => {
    if (/^\s*```/.test(text)) {
      inside = !inside;
    } else if (inside) {
      out.push({ line: index + 1, text });
    }
  });
  return out;
}

/** Lines joined across trailing backslashes, keeping the first line's number. */
export function joinContinuations(lines: readonly { line: number; text: string }[]): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let pending: { line: number; text: string } | undefined;
  for (const { line, text } of lines) {
    const continued = /\\\s*$/.test(text);
    const body = continued ? text.replace(/\\\s*$/, ' ') : text;
    pending = pending === undefined ? { line, text: body } : { line: pending.line, text: `${pending.text} ${body.trim()}` };
    if (!continued) {
      out.push(pending);
      pending = undefined;
    }
  }
  if (pending !== undefined) {
    out.push(pending);
  }
  return out;
}

/**
 * Shell words from `start` up to the end of that simple command (an unquoted `|`, `;`, `&`, `>`,
 * `<`, `)` or `#`): single and double quotes grouped, backslash escapes kept literal. Enough for
 * documentation, which never needs more of the shell than this.
 */
export function shellWords(text: string, start: number): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = start; i < text.length; i++) {
    const c = text[i] as string;
    if (quote !== undefined) {
      if (c === quote) {
        quote = undefined;
      } else {
        word += c;
      }
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) {
        words.push(word);
      }
      word = '';
      inWord = false;
    } else if ('|;&<>)#'.includes(c) && !(c === '#' && inWord)) {
      break;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) {
    words.push(word);
  }
  return words;
}

/** The line without its comment: from an unquoted `#` that starts a word (shell and YAML alike). */
export function withoutComment(text: string): string {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quote !== undefined) {
      quote = c === quote ? undefined : quote;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(text[i - 1] as string))) {
      return text.slice(0, i);
    }
  }
  return text;
}

/** Every `rackseal …` / `rackseal-agent …` command in the given lines (already continuation-joined), comments left out. */
export function commandsIn(source: string, lines: readonly { line: number; text: string }[]): DocumentedCommand[] {
  const out: DocumentedCommand[] = [];
  for (const { line, text: full } of lines) {
    const text = withoutComment(full);
    for (const match of text.matchAll(PROGRAM)) {
      const program = match[1] as CliProgram;
      const after = (match.index ?? 0) + match[0].length;
      out.push({ source, line, program, words: shellWords(text, after), text: text.trim() });
    }
  }
  return out;
}

/** What `--help` of one subcommand path says: its subcommands and the flags it accepts. */
interface Help {
  readonly status: number | null;
  readonly stderr: string;
  readonly subcommands: ReadonlySet<string>;
  readonly flags: ReadonlySet<string>;
}

function parseHelp(status: number | null, stdout: string, stderr: string): Help {
  const subcommands = new Set<string>();
  let section = '';
  for (const line of stdout.split('\n')) {
    const heading = /^(\w[\w ]*):\s*$/.exec(line);
    if (heading !== null) {
      section = heading[1] as string;
    } else if (section === 'Commands') {
      // An entry starts two spaces in; its wrapped description lines are indented further.
      const entry = /^ {2}([a-z][a-z0-9-]*)\b/.exec(line);
      if (entry !== null) {
        subcommands.add(entry[1] as string);
      }
    }
  }
  const flags = new Set([...stdout.matchAll(/(?:^|[\s,[])(--?[A-Za-z][A-Za-z0-9-]*)/gm)].map((m) => m[1] as string));
  return { status, stderr, subcommands, flags };
}

/** `--help` processes running at once: parallel, without a burst of dozens of Node processes. */
const MAX_RUNNING = 8;

/** Runs `--help` once per subcommand path, however many documented commands share it. */
export class HelpCache {
  private readonly cache = new Map<string, Promise<Help>>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  help(program: CliProgram, path: readonly string[]): Promise<Help> {
    const key = [program, ...path].join(' ');
    let found = this.cache.get(key);
    if (found === undefined) {
      found = this.limited(async () => {
        const run = program === 'rackseal' ? runRacksealCliAsync : runAgentCliAsync;
        const r = await run([...path, '--help'], { timeoutMs: 30_000 });
        return parseHelp(r.status, r.stdout, r.stderr);
      });
      this.cache.set(key, found);
    }
    return found;
  }

  /** Runs `task` in one of MAX_RUNNING slots; a finished task hands its slot straight to the next waiting one. */
  private async limited<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= MAX_RUNNING) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next === undefined) {
        this.running--;
      } else {
        next();
      }
    }
  }

  /**
   * The problems of one documented command, empty when the programs accept it: the subcommand path
   * is walked through the help of each level (a word that is not a subcommand where only
   * subcommands may follow is a problem), its `--help` must exit 0 with nothing on stderr, and each
   * flag used (`--name`, `--name=value`, `-x`) must appear in that help.
   */
  async problems(command: DocumentedCommand): Promise<string[]> {
    const path: string[] = [];
    let help = await this.help(command.program, path);
    let index = 0;
    for (; index < command.words.length; index++) {
      const word = command.words[index] as string;
      if (word.startsWith('-') || help.subcommands.size === 0) {
        break;
      }
      if (!help.subcommands.has(word)) {
        return [`"${[command.program, ...path].join(' ')}" has no subcommand "${word}" (it has: ${[...help.subcommands].join(', ')})`];
      }
      path.push(word);
      help = await this.help(command.program, path);
    }
    const where = [command.program, ...path].join(' ');
    if (help.status !== 0 || help.stderr !== '') {
      return [`"${where} --help" exited ${help.status}: ${help.stderr.trim()}`];
    }
    const used = command.words
      .slice(index)
      .filter((w) => /^--?[A-Za-z]/.test(w))
      .map((w) => w.split('=')[0] as string);
    return used.filter((flag) => !help.flags.has(flag)).map((flag) => `"${where}" does not accept ${flag}`);
  }
}
