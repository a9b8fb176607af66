import { readFileSync } from 'node:fs';
import { formatTable } from './measure';

/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, the .cpuprofile JSON of the Chrome DevTools
 * protocol's Profiler.Profile) by subsystem: each frame is classed by its script URL and name, self
 * time is charged to the frame's subsystem, inclusive time to every subsystem on the sample's
 * stack (once per sample), so "pg inclusive 30 %" means 30 % of the samples were somewhere inside pg.
 */
interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const SUBSYSTEMS: readonly [string, (url: string, fn: string) => boolean][] = [
  ['idle', (url, fn) => fn === '(idle)'],
  ['GC', (url, fn) => fn === '(garbage collector)'],
  ['(program: native, not attributed by V8)', (url, fn) => fn === '(program)'],
  ['TypeORM', (url) => url.includes('/node_modules/typeorm/')],
  ['pg driver', (url) => /\/node_modules\/(pg|pg-protocol|pg-pool|pg-types|postgres-[a-z]+|pgpass)\//.test(url)],
  ['logging (pino)', (url) => /\/node_modules\/(pino[a-z-]*|nestjs-pino|sonic-boom|fast-redact|quick-format-unescaped|thread-stream|on-exit-leak-free)\//.test(url)],
  ['Nest', (url) => url.includes('/node_modules/@nestjs/')],
  ['Express / body parsing', (url) => /\/node_modules\/(express|body-parser|router|raw-body|iconv-lite|type-is|content-type|finalhandler|send|serve-static|qs|on-finished|depd|http-errors|media-typer|mime-types|accepts|negotiator|statuses|setprototypeof|path-to-regexp|cookie|vary|etag|fresh|range-parser|parseurl|encodeurl|escape-html|proxy-addr|forwarded|ipaddr\.js|merge-descriptors|methods|utils-merge|safe-buffer|debug|ms)\//.test(url)],
  ['class-validator / class-transformer', (url) => /\/node_modules\/(class-validator|class-transformer|validator|libphonenumber-js)\//.test(url)],
  ['rxjs', (url) => url.includes('/node_modules/rxjs/')],
  ['other node_modules', (url) => url.includes('/node_modules/')],
  ['audit (libs/audit)', (url) => url.includes('/libs/audit/')],
  ['libs/tpm2', (url) => url.includes('/libs/tpm2/')],
  ['libs/ek-trust + vendor-cas', (url) => url.includes('/libs/ek-trust/') || url.includes('/libs/vendor-cas/')],
  ['our code (other libs/apps)', (url) => url.includes('/dist/libs/') || url.includes('/dist/apps/')],
  ['node:crypto', (url) => url.startsWith('node:internal/crypto') || url.startsWith('node:crypto')],
  ['node:http / net / streams', (url) => /^node:(internal\/)?(http|_http|net|stream|streams|internal\/streams|internal\/http|dns|tls)/.test(url) || url.startsWith('node:_http')],
  ['JSON', (url, fn) => url === '' && (fn === 'parse' || fn === 'stringify')],
  ['other node internals', (url) => url.startsWith('node:')],
  ['other native (no script)', () => true],
];

function classify(frame: ProfileNode['callFrame']): string {
  return SUBSYSTEMS.find(([, match]) => match(frame.url, frame.functionName))![0];
}

/** One profile, or several of the same program (short runs, each too brief alone) summed. */
export function summariseCpuProfile(paths: string | readonly string[], top = 15): string {
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const selfByFrame = new Map<string, number>();
  let total = 0;
  let busy = 0;
  for (const path of typeof paths === 'string' ? [paths] : paths) {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) {
      parent.set(child, node.id);
    }
  }
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const node = byId.get(id)!;
    const subsystem = classify(node.callFrame);
    self.set(subsystem, (self.get(subsystem) ?? 0) + dt);
    if (subsystem === 'idle') {
      return;
    }
    busy += dt;
    const frame = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${node.callFrame.lineNumber + 1}`;
    selfByFrame.set(frame, (selfByFrame.get(frame) ?? 0) + dt);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      seen.add(classify(byId.get(at)!.callFrame));
    }
    seen.forEach((s) => inclusive.set(s, (inclusive.get(s) ?? 0) + dt));
  });
  }
  const pct = (us: number) => `${((100 * us) / busy).toFixed(1)} %`;
  const subsystems = formatTable([
    ['subsystem', 'self (% of busy)', 'inclusive (% of busy)'],
    ...[...self]
      .filter(([s]) => s !== 'idle')
      .sort((a, b) => b[1] - a[1])
      .map(([s, us]) => [s, pct(us), pct(inclusive.get(s) ?? 0)]),
  ]);
  const frames = formatTable([
    ['top self-time frames', 'self (% of busy)'],
    ...[...selfByFrame]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([f, us]) => [f.replace(/\|/g, '\\|'), pct(us)]),
  ]);
  return `Profile ${(total / 1e6).toFixed(1)} s, busy ${((100 * busy) / total).toFixed(0)} % (the rest idle).\n\n${subsystems}\n\n${frames}`;
}
