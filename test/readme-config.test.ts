import { CONFIG_VARIABLES } from '@rackseal/config';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

// The README's configuration table is what operators read: it must list exactly the variables the
// code validates, with the same defaults.
describe('README configuration table', () => {
  const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
  const rows = new Map(
    [...readme.matchAll(/^\| `([A-Z0-9_]+)` \| (`[^`]*`|—) \|/gm)].map((m) => [m[1]!, m[2] === '—' ? undefined : m[2]!.slice(1, -1)]),
  );

  it('lists every variable with its default, and nothing else', () => {
    const specs = Object.values(CONFIG_VARIABLES) as { name: string; defaultText?: string }[];
    expect([...rows.keys()].sort()).toEqual(specs.map((s) => s.name).sort());
    for (const spec of specs) {
      expect([spec.name, rows.get(spec.name)]).toEqual([spec.name, spec.defaultText]);
    }
  });

  it('shows the two commands', () => {
    expect(readme).toContain('npm test');
    expect(readme).toContain('npm run demo');
  });
});
