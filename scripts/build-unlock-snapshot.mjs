// `npm run build:unlock` (run by `npm run build`, after tsc): the agent's boot unlock as a V8 startup
// snapshot (docs/decisions.md "Boot unlock from a startup snapshot").
//   1. esbuild bundles dist/apps/agent/src/unlock-snapshot.js (tsc's output, aliases rewritten) and
//      everything it reaches into dist/apps/agent/src/unlock-snapshot.bundle.js — `--build-snapshot`
//      takes one script, whose `require` knows only Node's own modules;
//   2. `node --build-snapshot` runs that bundle and writes the heap to dist/apps/agent/unlock.blob.
// The blob only starts under the node binary that built it (Node refuses another version or V8
// configuration with exit code 14): the initramfs hook checks it against the node it copies and
// rebuilds it from the bundle with that node when refused (deploy/initramfs-tools/hooks/rackseal).
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const agentDir = join(root, 'dist', 'apps', 'agent');
const entry = join(agentDir, 'src', 'unlock-snapshot.js');
// Beside main.js, so that code finding files relative to its own directory (version.ts) finds them.
const bundle = join(agentDir, 'src', 'unlock-snapshot.bundle.js');
const blob = join(agentDir, 'unlock.blob');

/**
 * agent-config-file.js requires js-yaml's one-file build by a path computed from
 * require.resolve('js-yaml') (the package's `exports` name only its index), which a bundler cannot
 * follow: the bundle gets that same file by its resolved path. The build stops if the line changed.
 */
const JS_YAML_REQUIRE = "require((0, node_path_1.join)((0, node_path_1.dirname)(require.resolve('js-yaml')), 'dist', 'js-yaml.js'))";
const jsYamlOneFile = {
  name: 'js-yaml-one-file',
  setup(build) {
    build.onLoad({ filter: /[\\/]apps[\\/]agent[\\/]src[\\/]install[\\/]agent-config-file\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      if (source.split(JS_YAML_REQUIRE).length !== 2) {
        throw new Error(`${args.path}: js-yaml is no longer required as this script expects (${JS_YAML_REQUIRE}); update it`);
      }
      const oneFile = join(dirname(createRequire(args.path).resolve('js-yaml')), 'dist', 'js-yaml.js');
      return { contents: source.replace(JS_YAML_REQUIRE, `require(${JSON.stringify(oneFile)})`), loader: 'js' };
    });
  },
};

async function buildBundle() {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [entry],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    // iife: the entry gets a module object of its own (the snapshot builder gives the script none).
    format: 'iife',
    target: 'node20',
    // Node's modules stay require() calls; nothing else may: the snapshot's require loads no file.
    packages: 'bundle',
    plugins: [jsYamlOneFile],
    metafile: true,
    logLevel: 'warning',
    // The same input gives the same bytes: no banner, no source map, no timestamps.
    legalComments: 'none',
    // No comments or indentation, every character ASCII: V8 keeps the script's source in the heap
    // for the functions it compiles on first call, and a source with one character above U+00FF
    // (the comments' em dashes) is stored two bytes a character, in every blob. Names are kept:
    // error classes and the CPU profiles name functions (bench/README.md, "unlock: bytecode in the blob").
    minifyWhitespace: true,
    charset: 'ascii',
  });
  const outside = Object.keys(result.metafile.inputs).filter((file) => file.includes('node_modules') && !file.endsWith('js-yaml/dist/js-yaml.js'));
  if (outside.length > 0) {
    throw new Error(`the unlock bundle reached node_modules beyond js-yaml's one-file build: ${outside.join(', ')}`);
  }
}

/** `node --build-snapshot` with the node running this script (the one `npm run build` uses). */
function buildBlob(from, to) {
  rmSync(to, { force: true });
  execFileSync(process.execPath, ['--snapshot-blob', to, '--build-snapshot', from], { stdio: ['ignore', 'inherit', 'inherit'] });
}

await buildBundle();
buildBlob(bundle, blob);
