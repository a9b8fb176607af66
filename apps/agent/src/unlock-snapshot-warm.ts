/*
 * Run once while `node --build-snapshot` builds the agent's startup snapshot (unlock-snapshot.ts):
 * the boot unlock's pure front — the command line, the config file's YAML and fields, the LUKS2
 * header's token — on made-up inputs, so that V8 compiles those functions then and the blob carries
 * their bytecode (Node 20's user-land snapshot keeps the bytecode of functions that ran while it was
 * built; bench/README.md, "unlock: bytecode in the blob"). Without it each is compiled on its first
 * call at every boot.
 *
 * Nothing here reads a file, the clock, the environment, a random value or a key, and nothing it
 * makes is kept: the inputs are constants (no machine's config, device or secret), the results are
 * dropped. A sample that no longer validates fails the build, loudly, rather than warm nothing.
 */
import { resolveInvocation } from '@rackseal/command-line/command-tree';
import { parseAgentConfigText } from './install/agent-config-file';
import { luksMetadataFromJson } from './install/luks-token-format';
import { unlockCommand } from './commands/tpm.command';

/** An agent.yaml as the operator guide writes one for a machine with a rackseal root disk. */
const SAMPLE_CONFIG = `server: https://rackseal.example
tpm: /dev/tpmrm0
stateDir: /var/lib/rackseal-agent
installs:
  root-disk:
    kind: disk
    device: /dev/disk/by-partlabel/root
    enrollKeyFile: /etc/rackseal/enroll.key
  web-tls:
    kind: tls
    keyPath: /etc/ssl/private/web.key
    certPath: /etc/ssl/certs/web.pem
    mode: "0600"
`;

/** A LUKS2 header's JSON as unlock reads it: two keyslots and the rackseal token (its envelope a placeholder). */
const SAMPLE_HEADER = {
  keyslots: { '0': { type: 'luks2' }, '1': { type: 'luks2' } },
  tokens: {
    '0': { type: 'rackseal', keyslots: ['1'], format: 1, secret: 'root-disk', generation: 1, envelope: 'AAAA', retiring: [], approvals: { group: 'rack-a', epoch: 1 } },
  },
};

export function warmUnlockPath(): void {
  const invocation = resolveInvocation({ name: 'rackseal-agent', description: '', version: () => '0', subcommands: [unlockCommand] }, [
    'unlock',
    '--device',
    '/dev/disk/by-partlabel/root',
    '--config',
    '/etc/rackseal/agent.yaml',
  ]);
  if (!('run' in invocation)) {
    throw new Error('warming the unlock path: the sample command line did not resolve to the unlock command');
  }
  const config = parseAgentConfigText(SAMPLE_CONFIG, '/etc/rackseal/agent.yaml');
  if (config.installs.get('root-disk')?.kind !== 'disk') {
    throw new Error('warming the unlock path: the sample config did not parse as a disk install');
  }
  if (luksMetadataFromJson(SAMPLE_HEADER, '/dev/disk/by-partlabel/root').token?.keyslot !== 1) {
    throw new Error('warming the unlock path: the sample header has no rackseal token');
  }
}
