/**
 * The repository stands alone (issue 10 item 5): a clone with nothing beside it builds and passes its
 * tests. So nothing may read files from a sibling folder, nothing may cite documents that are not in
 * the repository (comments cite the TPM 2.0 Library specification, TCG specifications, RFCs or
 * docs/architecture.md), and every public fixture sits in test/fixtures with its origin in SOURCES.md,
 * reached only through fixturePath().
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fixturePath } from './support/fixtures';
import { repoRoot } from './support/repo-root';

const ROOT = repoRoot();

/** Everything that is part of the project's sources, docs and tooling (not node_modules, dist, .git). */
const SCANNED = ['apps', 'libs', 'test', 'demo', 'bench', 'scripts', 'migrations', 'docker', 'docs', '.ci'];
const SCANNED_ROOT_FILES = ['README.md', 'package.json', 'jest.config.js', 'eslint.config.mjs', 'nest-cli.json', 'tsconfig.json', 'tsconfig.build.json', 'tsconfig.bench.json', '.dockerignore'];

// The words are assembled so that this file does not match its own patterns.
const SIBLING = ['sha', 'red'].join('');
const OUTSIDE_REFERENCES: readonly { readonly why: string; readonly pattern: RegExp }[] = [
  { why: `reads a sibling ../${SIBLING} folder`, pattern: new RegExp(`\\.\\.[\\\\/]+${SIBLING}\\b`) },
  { why: `builds a path through a '${SIBLING}' folder`, pattern: new RegExp(`['"\`]${SIBLING}['"\`]`) },
  { why: `names ${SIBLING}/fixtures or ${SIBLING}/docs`, pattern: new RegExp(`\\b${SIBLING}[\\\\/](fixtures|docs)\\b`) },
  { why: 'cites a design document that is not in the repository', pattern: new RegExp(['DESIGN', '(\\.md)?', ' §'].join('')) },
  { why: 'cites a TPM brief that is not in the repository', pattern: new RegExp(['TPM2', '-BRIEF'].join('')) },
];

/** A string literal that is a path through a fixtures folder: only fixturePath() may build one. */
const FIXTURE_PATH_LITERAL = /(['"`])(?:\.{1,2}\/)*[\w./-]*\bfixtures\b[\w./-]*\1/;
const CODE = /\.(ts|js|mjs|cjs)$/;
/** Module specifiers (`from './support/fixtures'`) name the helper, not a fixture. */
const IMPORT = /\bfrom\s+['"]|\brequire\(/;

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'dist') {
        out.push(...filesUnder(path));
      }
    } else if (entry.isFile()) {
      out.push(path);
    }
  }
  return out;
}

/** Every finding in one text: `line: why`. */
function outsideReferences(text: string): string[] {
  return text.split('\n').flatMap((line, i) => OUTSIDE_REFERENCES.filter((r) => r.pattern.test(line)).map((r) => `${i + 1}: ${r.why}`));
}

const posix = (path: string): string => relative(ROOT, path).split(sep).join('/');

/** Project files as text; the fixtures themselves are others' data (binary logs, certificates), only SOURCES.md is ours. */
function projectFiles(): { path: string; text: string }[] {
  const fixtures = fixturePath();
  const files = [...SCANNED.flatMap((dir) => (statSafe(join(ROOT, dir)) ? filesUnder(join(ROOT, dir)) : [])), ...SCANNED_ROOT_FILES.map((f) => join(ROOT, f))];
  return files
    .filter((path) => !path.startsWith(fixtures + sep) || path === fixturePath('SOURCES.md'))
    .map((path) => ({ path: posix(path), text: readFileSync(path, 'utf8') }));
}

function statSafe(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

describe('the repository stands alone', () => {
  const files = projectFiles();

  it('scans the whole tree (sources, tests, benches, scripts, migrations, docker, docs)', () => {
    const top = new Set(files.map((f) => f.path.split('/')[0]));
    expect([...SCANNED.filter((d) => d !== '.ci'), 'README.md'].filter((d) => !top.has(d))).toEqual([]);
    expect(files.length).toBeGreaterThan(300);
  });

  it('flags each kind of outside reference, and only those', () => {
    const up = '..';
    expect(outsideReferences(`const dir = join(REPO, '${up}', '${SIBLING}', 'fixtures');`)).toEqual([`1: builds a path through a '${SIBLING}' folder`]);
    expect(outsideReferences(`// fixtures in ${up}/${SIBLING}/fixtures/eventlogs`)).toEqual([`1: reads a sibling ../${SIBLING} folder`, `1: names ${SIBLING}/fixtures or ${SIBLING}/docs`]);
    expect(outsideReferences(`ok\n/** The decrypt key (DESIGN ${'§'}2). */`)).toEqual(['2: cites a design document that is not in the repository']);
    expect(outsideReferences(`// as ${['TPM2', 'BRIEF'].join('-')} §4 says`)).toEqual(['1: cites a TPM brief that is not in the repository']);
    expect(outsideReferences("// docs/architecture.md §6; Part 3 §23.7; PFP §10.4.5.3; RFC 5280 §4.1.2.2; a shared secret")).toEqual([]);
  });

  it(`nothing reads ../${SIBLING} or cites documents outside the repository`, () => {
    const findings = files.flatMap(({ path, text }) => outsideReferences(text).map((f) => `${path}:${f}`));
    expect(findings).toEqual([]);
  });

  it('tests and benches reach fixtures only through fixturePath()', () => {
    // The helper itself, and this file's samples.
    const allowed = [posix(join(ROOT, 'test', 'support', 'fixtures.ts')), posix(__filename)];
    const built = files
      .filter(({ path }) => CODE.test(path) && !allowed.includes(path))
      .flatMap(({ path, text }) => text.split('\n').flatMap((line, i) => (FIXTURE_PATH_LITERAL.test(line) && !IMPORT.test(line) ? [`${path}:${i + 1}: ${line.trim()}`] : [])));
    expect(built).toEqual([]);
    expect(FIXTURE_PATH_LITERAL.test("join(__dirname, 'fixtures', 'eventlogs')")).toBe(true);
    expect(FIXTURE_PATH_LITERAL.test("describe('real event logs (test/fixtures/eventlogs)'")).toBe(false);
  });

  it('every fixture is named in test/fixtures/SOURCES.md, and every folder has its section', () => {
    const sources = readFileSync(fixturePath('SOURCES.md'), 'utf8');
    const fixtures = filesUnder(fixturePath()).map((path) => relative(fixturePath(), path).split(sep));
    const unnamed = fixtures.filter((parts) => parts.length === 2 && !sources.includes(`\`${parts[1] ?? ''}\``)).map((parts) => parts.join('/'));
    expect(unnamed).toEqual([]);
    const folders = [...new Set(fixtures.filter((parts) => parts.length > 1).map(([dir]) => dir))].sort();
    expect(folders).toEqual(['eventlogs', 'ima', 'tpm-vectors', 'vendor-cas']);
    expect(folders.filter((dir) => !sources.includes(`## ${dir ?? ''}/`))).toEqual([]);
    expect(fixtures.filter((parts) => parts.length > 2 || (parts.length === 1 && parts[0] !== 'SOURCES.md'))).toEqual([]);
  });
});
