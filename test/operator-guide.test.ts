/**
 * Every `rackseal …` and `rackseal-agent …` command line in a fenced block of the operator guide
 * (docs/guide/*.md), the README and docker/README.md is one the built programs accept: its subcommand path exists and
 * every flag it uses is in that path's `--help` (test/support/documented-commands.ts). One `--help`
 * process per distinct subcommand path, eight at a time. The agent config files they show load with
 * the agent's own loader, and the guide's relative links lead to files.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { loadAgentConfig } from '../apps/agent/src/install/agent-config-file';
import { commandsIn, type DocumentedCommand, fencedLines, HelpCache, joinContinuations } from './support/documented-commands';
import { repoRoot } from './support/repo-root';

const ROOT = repoRoot();
const GUIDE = join(ROOT, 'docs', 'guide');

function documents(): string[] {
  const guide = readdirSync(GUIDE)
    .filter((name) => name.endsWith('.md'))
    .map((name) => join(GUIDE, name));
  return [join(ROOT, 'README.md'), join(ROOT, 'docker', 'README.md'), ...guide];
}

function documentedCommands(): DocumentedCommand[] {
  return documents().flatMap((file) =>
    commandsIn(relative(ROOT, file), joinContinuations(fencedLines(readFileSync(file, 'utf8')))),
  );
}

describe('the command lines of the operator guide, the README and docker/README.md', () => {
  const helps = new HelpCache();

  it('are found in every guide page that shows commands (the extraction itself works)', () => {
    const commands = documentedCommands();
    const sources = new Set(commands.map((c) => c.source));
    for (const page of ['README.md', 'docker/README.md', 'docs/guide/install.md', 'docs/guide/fleet.md', 'docs/guide/agent.md', 'docs/guide/secrets.md', 'docs/guide/backup.md']) {
      expect({ page, found: sources.has(page) }).toEqual({ page, found: true });
    }
    expect(commands.filter((c) => c.program === 'rackseal').length).toBeGreaterThan(40);
    expect(commands.filter((c) => c.program === 'rackseal-agent').length).toBeGreaterThan(5);
  });

  it('name subcommands and flags that the built rackseal and rackseal-agent accept', async () => {
    const commands = documentedCommands();
    const results = await Promise.all(
      commands.map(async (c) => ({ at: `${c.source}:${c.line}`, command: c.text, problems: await helps.problems(c) })),
    );
    expect(results.filter((r) => r.problems.length > 0)).toEqual([]);
  });

  it('would catch a renamed flag, a misspelt subcommand and a flag of another subcommand', async () => {
    const lines = joinContinuations(
      fencedLines(
        [
          '```sh',
          'rackseal inventory import fleet.csv --dryrun',
          'rackseal invntory import fleet.csv',
          'export T=$(rackseal token create --name x --scope admin --json)',
          'rackseal-agent unlock --device /dev/sda3 \\',
          '  --offline',
          '```',
        ].join('\n'),
      ),
    );
    const commands = commandsIn('self-test', lines);
    expect(commands.map((c) => [c.program, c.words.slice(0, 2)])).toEqual([
      ['rackseal', ['inventory', 'import']],
      ['rackseal', ['invntory', 'import']],
      ['rackseal', ['token', 'create']],
      ['rackseal-agent', ['unlock', '--device']],
    ]);
    const problems = await Promise.all(commands.map((c) => helps.problems(c)));
    expect(problems).toEqual([
      ['"rackseal inventory import" does not accept --dryrun'],
      [expect.stringContaining('"rackseal" has no subcommand "invntory"')],
      ['"rackseal token create" does not accept --json'],
      ['"rackseal-agent unlock" does not accept --offline'],
    ]);
  });

  it('link only to files that exist (the observability and hardening pages come from their own work)', () => {
    const pending = new Set([join(GUIDE, 'observability.md'), join(GUIDE, 'hardening.md')]);
    const broken = documents()
      .filter((file) => file.startsWith(GUIDE))
      .flatMap((file) =>
        [...readFileSync(file, 'utf8').matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)]
          .map((m) => m[1] as string)
          .filter((target) => !/^[a-z]+:/.test(target))
          .map((target) => join(dirname(file), target))
          .filter((target) => !existsSync(target) && !pending.has(target))
          .map((target) => `${relative(ROOT, file)} -> ${relative(ROOT, target)}`),
      );
    expect(broken).toEqual([]);
  });

  it("show agent config files that the agent's own loader accepts", async () => {
    const blocks = documents().flatMap((file) =>
      [...readFileSync(file, 'utf8').matchAll(/^```yaml\n([\s\S]*?)^```$/gm)]
        .map((m) => ({ file: relative(ROOT, file), yaml: m[1] as string }))
        .filter((b) => /^installs:/m.test(b.yaml)),
    );
    expect(blocks.map((b) => b.file)).toEqual(expect.arrayContaining(['README.md', 'docs/guide/agent.md']));
    const dir = mkdtempSync(join(tmpdir(), 'rackseal-guide-yaml-'));
    try {
      for (const [index, block] of blocks.entries()) {
        const path = join(dir, `${index}.yaml`);
        writeFileSync(path, block.yaml);
        const loaded = await loadAgentConfig(path).then(
          (config) => ({ installs: config.installs.size }),
          (error: Error) => ({ error: error.message }),
        );
        expect({ file: block.file, loaded }).toEqual({ file: block.file, loaded: { installs: expect.any(Number) } });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
