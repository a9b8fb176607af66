import type { CommandSpec, OptionValues } from '@rackseal/command-line/command-tree';
import type { EkKind } from '@rackseal/tpm2';

/*
 * Every `rackseal-agent` command described as data — `tpm …` and, below it, `enroll`, `status` and
 * `run` — each command's code in its *.action.ts, loaded by `import()` when that command runs. The
 * descriptions share this one file on purpose: `--help` runs at boot, and every file it loads costs
 * a module resolution and more (a separate file for enroll/status/run measured +6 ms CPU, 1.13× →
 * 1.35× of `node -e 0`: bench/README.md, agent-startup).
 */

/** The kernel resource manager, which flushes what a crashed agent leaves behind. */
export const DEFAULT_TPM_DEVICE = '/dev/tpmrm0';

/**
 * `--tpm <device>` of every `tpm` command. Its strings live here rather than in `@rackseal/tpm2`
 * (whose openTransport parses the forms) so that `--help` does not load the TPM library.
 */
const TPM_DEVICE_OPTION = {
  flags: '--tpm <device>',
  description: 'TPM device: /dev/tpmrm0, /dev/tpm0 or swtpm:HOST:PORT',
  defaultValue: DEFAULT_TPM_DEVICE,
} as const;

export interface TpmInfoOptions {
  tpm: string;
  json?: boolean;
}

/**
 * `rackseal-agent tpm info`: answers "is this TPM usable by rackseal?" on a node, with no server
 * (docs/architecture.md §6). Exit 0 when at least one EK certificate is present and the TPM's EK is its key;
 * exit 1 (the report is still printed) when none is, as enrollment would then be refused.
 */
export const tpmInfoCommand: CommandSpec = {
  name: 'info',
  description: 'manufacturer, firmware, PCR banks and EK certificates of a TPM, and whether its EK matches them',
  options: [TPM_DEVICE_OPTION, { flags: '--json', description: 'machine-readable output on stdout' }],
  action: async (options) => (await import('./tpm-info.action')).runTpmInfo(options as unknown as TpmInfoOptions),
};

export interface TpmQuoteOptions {
  tpm: string;
  selection: string;
  nonce: string;
  outDir: string;
  ek: string;
  ak: string;
}

/** The EKs an AK can be created under (libs/tpm2's EkKind). */
export const EK_KINDS = ['rsa-2048', 'ecc-p256', 'ecc-p384'] as const satisfies readonly EkKind[];

/**
 * `rackseal-agent tpm quote`: a fresh AK under the EK quotes a PCR selection over a nonce, and the
 * result is written as tpm2-tools writes it (docs/architecture.md §6), so `tpm2_checkquote` and `rackseal quote
 * verify` check it unchanged: ak.pub (TPM2B_PUBLIC, the TPM's exact bytes), q.msg (TPMS_ATTEST),
 * q.sig (TPMT_SIGNATURE), q.pcrs (the values in selection order, as `tpm2_quote -o -F values`).
 * The AK and every session are flushed before the command ends: swtpm has no resource manager.
 */
export const tpmQuoteCommand: CommandSpec = {
  name: 'quote',
  description: 'create an AK under the EK and quote PCRs with it, writing ak.pub, q.msg, q.sig and q.pcrs (tpm2-tools formats)',
  options: [
    TPM_DEVICE_OPTION,
    { flags: '--selection <banks>', description: 'PCRs to quote, e.g. sha256:0,7 or sha1:0+sha256:0,7', required: true },
    { flags: '--nonce <hex>', description: "qualifying data in hex ('' for none)", required: true },
    { flags: '--out-dir <dir>', description: 'where to write ak.pub, q.msg, q.sig and q.pcrs', required: true },
    { flags: '--ek <kind>', description: `the EK the AK is created under: ${EK_KINDS.join(', ')}`, defaultValue: 'rsa-2048' },
    { flags: '--ak <type>', description: 'AK key type: ecc (ECDSA P-256 SHA256, the default: milliseconds to create) or rsa (RSASSA-SHA256)', defaultValue: 'ecc' },
  ],
  action: async (options) => (await import('./tpm-quote.action')).runTpmQuote(options as unknown as TpmQuoteOptions),
};

/** `rackseal-agent tpm …`: diagnostics that talk to the TPM only, no server (docs/architecture.md §6). */
export const tpmCommand: CommandSpec = {
  name: 'tpm',
  description: 'TPM diagnostics (no server needed)',
  subcommands: [tpmInfoCommand, tpmQuoteCommand],
};

// ── enroll, status, run ───────────────────────────────────────────────────────────────────────

/** Where the agent keeps identity.json and its sealed node credential (apps/agent/src/state). */
export const DEFAULT_STATE_DIR = '/var/lib/rackseal-agent';
/** The TCG event log the Linux kernel exposes (TCG PC Client Platform Firmware Profile §10). */
export const DEFAULT_EVENT_LOG = '/sys/kernel/security/tpm0/binary_bios_measurements';
/** Where the kernel shows the IMA measurement list, binary (security/integrity/ima/ima_fs.c). */
export const DEFAULT_IMA_LIST = '/sys/kernel/security/ima/binary_runtime_measurements';

/** The agent's config file (apps/agent/src/install/agent-config.ts): defaults for the options below, and the installs. */
const CONFIG_OPTION = {
  flags: '--config <file>',
  description: `the agent's config file: defaults for --server, --tpm and --state-dir, and where secrets are installed (default: ${JSON.stringify('/etc/rackseal/agent.yaml')}, if it exists)`,
} as const;
/** The control plane's CA, the only one its certificate may chain to (docs/guide/hardening.md). */
const SERVER_CA_OPTION = {
  flags: '--server-ca <file>',
  description: "PEM file of the CA the control plane's TLS certificate must chain to; only it is trusted, not the system's CAs (default: the config file's serverCa)",
} as const;
// No defaultValue on these two: a value from the command line must be told from one to take from
// the config file (agent-config-defaults.ts fills in the config's, then the built-in default).
const STATE_DIR_OPTION = { flags: '--state-dir <dir>', description: `the agent's state directory (default: the config file's stateDir, else ${JSON.stringify(DEFAULT_STATE_DIR)})` } as const;
const CONFIGURED_TPM_OPTION = { flags: '--tpm <device>', description: `${TPM_DEVICE_OPTION.description} (default: the config file's tpm, else ${JSON.stringify(DEFAULT_TPM_DEVICE)})` } as const;

/** The options with the config file's defaults, loaded with the command's code (never by --help). */
const configured = async (options: OptionValues, command: string): Promise<OptionValues> => (await import('./agent-config-defaults')).withAgentConfig(options, command);
const JSON_OPTION = { flags: '--json', description: 'machine-readable output on stdout' } as const;
const EVENT_LOG_OPTION = {
  flags: '--event-log <file>',
  description: "the machine's TCG event log, sent with the quote ('none' to send none; a missing default file means none)",
  defaultValue: DEFAULT_EVENT_LOG,
} as const;
// No defaultValue: the config file's imaList comes before the built-in default (agent-config-defaults.ts).
const IMA_LIST_OPTION = {
  flags: '--ima-list <file>',
  description: `the IMA measurement list (binary) whose new entries are sent when the machine's group has a runtime policy; its per-bank list FILE_<bank> of the quoted bank instead when the kernel writes one (default: the config file's imaList, else ${JSON.stringify(DEFAULT_IMA_LIST)})`,
} as const;
const TIMEOUT_OPTION = {
  flags: '--timeout <duration>',
  description: 'one HTTP attempt, connect to the last byte of the answer, e.g. 30s, 2m (retries come on top)',
  defaultValue: '30s',
} as const;
const EK_OPTION = { flags: '--ek <kind>', description: 'the EK to enroll with: rsa-2048 or ecc-p256', defaultValue: 'rsa-2048' } as const;

/** The options as the action gets them: the config file's defaults filled in (agent-config-defaults.ts). */
export interface EnrollOptions {
  server?: string;
  tpm: string;
  stateDir: string;
  ek: string;
  eventLog: string;
  imaList: string;
  timeout: string;
  json?: boolean;
}

/**
 * `rackseal-agent enroll`: the whole enrollment exchange with the control plane (docs/architecture.md
 * §4.3); on `attested`, the node credential is sealed under this TPM's storage key and identity.json
 * written. Exit 0 attested; 1 refused by the server (its code and message); 2 usage, TPM or server
 * unusable.
 */
export const enrollCommand: CommandSpec = {
  name: 'enroll',
  description: 'enroll this machine with the control plane: prove its TPM, attest its boot, store its node credential',
  options: [{ flags: '--server <url>', description: "the control plane, e.g. https://rackseal.example (default: the config file's server)" }, CONFIGURED_TPM_OPTION, STATE_DIR_OPTION, CONFIG_OPTION, SERVER_CA_OPTION, EK_OPTION, EVENT_LOG_OPTION, IMA_LIST_OPTION, TIMEOUT_OPTION, JSON_OPTION],
  action: async (options) => (await import('./enroll.action')).runEnroll((await configured(options, 'enroll')) as unknown as EnrollOptions),
};

export interface StatusOptions {
  server?: string;
  tpm: string;
  stateDir: string;
  timeout: string;
  offline?: boolean;
  json?: boolean;
}

/**
 * `rackseal-agent status`: the state dir, whether the sealed credential opens in this TPM, and what
 * the server says of the machine (GET /node/v1/self, unless --offline). Exit 0 enrolled, the
 * credential opens and the server does not refuse it (an unreachable server is reported, not an
 * error); 1 not enrolled, the credential does not open, or the server refuses it (revoked,
 * quarantined); 2 the state dir is unusable.
 */
export const statusCommand: CommandSpec = {
  name: 'status',
  description: "this machine's enrollment as its state dir records it, whether its sealed credential opens in this TPM, and what the server says of it",
  options: [
    CONFIGURED_TPM_OPTION,
    STATE_DIR_OPTION,
    CONFIG_OPTION,
    SERVER_CA_OPTION,
    { flags: '--server <url>', description: "the control plane to ask (default: the config file's server, else the one enrolled with)" },
    { flags: '--offline', description: 'do not ask the server (GET /node/v1/self)' },
    { ...TIMEOUT_OPTION, defaultValue: '10s' },
    JSON_OPTION,
  ],
  action: async (options) => (await import('./status.action')).runStatus((await configured(options, 'status')) as unknown as StatusOptions),
};

export interface RunOptions {
  server?: string;
  tpm: string;
  stateDir: string;
  eventLog: string;
  imaList: string;
  interval?: string;
  askEvery: string;
  timeout: string;
  once?: boolean;
  /** The config file (--config): its installs say where delivered secrets go. */
  config?: string;
}

/**
 * `rackseal-agent run`: re-attests on a schedule and when the server asks (GET /node/v1/self), so a
 * drift quarantines the machine within one interval; between attestations it long-polls the mailbox
 * and installs each delivery where the config file says, then acks it; one JSON line per attempt and
 * per delivery on stdout.
 */
export const runCommand: CommandSpec = {
  name: 'run',
  description: 're-attest on a schedule (and when the server asks), rotating the node credential, and install the deliveries in between; one JSON line per attempt and per delivery',
  options: [
    { flags: '--server <url>', description: "the control plane (default: the config file's server, else the one enrolled with)" },
    CONFIGURED_TPM_OPTION,
    STATE_DIR_OPTION,
    CONFIG_OPTION,
    SERVER_CA_OPTION,
    EVENT_LOG_OPTION,
    IMA_LIST_OPTION,
    { flags: '--interval <duration>', description: "between attestations, e.g. 30m, 1h (default: the server's, else 1h)" },
    { flags: '--ask-every <duration>', description: 'how often to ask the server (GET /node/v1/self) whether to re-attest now', defaultValue: '1m' },
    { flags: '--once', description: 'attest once and exit with its outcome (0 attested, 1 refused, 2 unreachable)' },
    TIMEOUT_OPTION,
  ],
  action: async (options) => (await import('./run.action')).runRun((await configured(options, 'run')) as unknown as RunOptions),
};

// ── unlock ────────────────────────────────────────────────────────────────────────────────────

export interface UnlockOptions {
  device?: string;
  online?: boolean;
  server?: string;
  tpm: string;
  stateDir: string;
  timeout: string;
  crypttabPeer?: string;
  crypttab: string;
  prewrapped?: string;
  /** Filled in from the config file (agent-config-defaults.ts): --online sends IMA entries when asked. */
  imaList?: string;
}

/**
 * `rackseal-agent unlock`: the disk key on stdout, and nothing else, for `cryptsetup open
 * --key-file=-`, a crypttab keyscript or systemd-cryptsetup's AF_UNIX key file (deploy/). Offline by
 * default: the LUKS2 header's rackseal token and the approvals in it or in the state dir. Exit 0 only
 * once every byte of the key is written; otherwise one line on stderr, nothing on stdout, exit 1 (a
 * refusal: no token, no approval of this boot state, another machine's) or 2 (device, TPM or server
 * unusable). `--prewrapped FILE` is a pre-wrapped disk's first boot (issue 14 item 6): a new, blank
 * device is formatted with the key the file's envelope holds, its token written, and the key printed.
 */
export const unlockCommand: CommandSpec = {
  name: 'unlock',
  description: "write the disk key of a LUKS2 device (from its rackseal token, opened in this TPM) to stdout, for cryptsetup --key-file=-",
  options: [
    { flags: '--device <device>', description: 'the LUKS2 device or image file whose rackseal token is read' },
    { flags: '--online', description: 'attest first and fetch the approvals from the server (refreshing the state dir\'s copy); fails if the server refuses or cannot be reached' },
    { flags: '--server <url>', description: "with --online: the control plane (default: the config file's server, else the one enrolled with)" },
    CONFIGURED_TPM_OPTION,
    STATE_DIR_OPTION,
    CONFIG_OPTION,
    SERVER_CA_OPTION,
    { ...TIMEOUT_OPTION, defaultValue: '10s' },
    { flags: '--crypttab-peer <instance>', description: 'instead of --device: systemd\'s Accept=yes instance (%i) of a connection from systemd-cryptsetup; the volume comes from its socket name, the device from the crypttab' },
    { flags: '--crypttab <file>', description: 'with --crypttab-peer: the crypttab to find the volume\'s device in', defaultValue: '/etc/crypttab' },
    { flags: '--prewrapped <file>', description: "a pre-wrapped disk key's provisioning file (rackseal machines prewrapped): a blank device is formatted with its key and given its rackseal token first (first boot, offline); a device that has its token unlocks as usual" },
  ],
  action: async (options) => (await import('./unlock.action')).runUnlock((await configured(options, 'unlock')) as unknown as UnlockOptions),
};
