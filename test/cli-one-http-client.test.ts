/**
 * Issue 10 item 6: the CLI talks HTTP in one place, apps/cli/src/server-client.ts (ServerClient: the
 * --server/RACKSEAL_SERVER and --token/RACKSEAL_TOKEN fallback, the bearer header, the messages for
 * 401/403/4xx/5xx and an unreachable server). `inventory import` once carried its own copy; this
 * test fails when any other CLI source sends a request or reads those settings itself.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const CLI_SOURCES = join(__dirname, '..', 'apps', 'cli', 'src');
const THE_CLIENT = 'server-client.ts';

/** What only ServerClient may do, each with a pattern that finds it in source text. */
const CLIENT_ONLY: readonly (readonly [string, RegExp])[] = [
  ['sends an HTTP request', /\bfetch\s*\(|from ['"](?:node:)?https?['"]|from ['"]undici['"]|\brequire\(['"](?:node:)?https?['"]\)/],
  ['reads RACKSEAL_TOKEN or RACKSEAL_SERVER', /process\.env(?:\.|\[['"])RACKSEAL_(?:TOKEN|SERVER)\b/],
  ['builds a bearer header', /['"`]Bearer /],
  ['maps HTTP statuses to messages', /\b(?:status|statusCode)\s*(?:===?|>=?|<=?)\s*[45]\d\d\b/],
];

/** Why `source` re-implements the client (empty when it does not). */
function clientReimplementations(source: string): string[] {
  return CLIENT_ONLY.filter(([, pattern]) => pattern.test(source)).map(([what]) => what);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') ? [join(dir, entry.name)] : [],
  );
}

describe('one HTTP client in the CLI', () => {
  it('no CLI source but server-client.ts sends requests, reads the server settings or maps statuses', () => {
    const files = sourceFiles(CLI_SOURCES);
    expect(files.map((f) => relative(CLI_SOURCES, f))).toContain(THE_CLIENT);
    const offenders = files
      .filter((f) => relative(CLI_SOURCES, f) !== THE_CLIENT)
      .map((f) => [relative(CLI_SOURCES, f), clientReimplementations(readFileSync(f, 'utf8'))] as const)
      .filter(([, found]) => found.length > 0);
    expect(offenders).toEqual([]);
  });

  it('ServerClient itself is what the check looks for (the patterns are not dead)', () => {
    expect(clientReimplementations(readFileSync(join(CLI_SOURCES, THE_CLIENT), 'utf8'))).toEqual(
      expect.arrayContaining(['sends an HTTP request', 'reads RACKSEAL_TOKEN or RACKSEAL_SERVER', 'builds a bearer header']),
    );
  });

  it('fails on a sample: the token fallback and 401 message inventory import once had', () => {
    const sample = [
      "const token = options.token ?? process.env.RACKSEAL_TOKEN;",
      "const response = await fetch(new URL('v1/inventory/imports', server), { headers: { authorization: `Bearer ${token}` } });",
      "if (response.status === 401) { throw CliError.usage('the token was refused'); }",
    ].join('\n');
    expect(clientReimplementations(sample)).toEqual(['sends an HTTP request', 'reads RACKSEAL_TOKEN or RACKSEAL_SERVER', 'builds a bearer header', 'maps HTTP statuses to messages']);
  });
});
