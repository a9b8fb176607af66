// tsc drops the executable bit; the package.json `bin` targets need it for `npx rackseal`.
import { chmodSync, readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
for (const target of Object.values(pkg.bin)) {
  chmodSync(new URL(`../${target}`, import.meta.url), 0o755);
}
