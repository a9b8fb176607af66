import type { CommandSpec } from '@rackseal/command-line/command-tree';
import { TPM_DEVICE_OPTION } from './tpm.command';

/*
 * `rackseal-agent enroll|status|run` described as data, each command's code in its *.action.ts,
 * loaded by `import()` when that command runs (as tpm.command.ts, and for the same reason: `--help`
 * runs at boot, bench/README.md agent-startup). One file for the three: each file costs a resolution.
 */

/** Where the agent keeps identity.json and its sealed node credential (apps/agent/src/state). */
export const DEFAULT_STATE_DIR = '/var/lib/rackseal-agent';
/** The TCG event log the Linux kernel exposes (TCG PC Client Platform Firmware Profile §10). */
export const DEFAULT_EVENT_LOG = '/sys/kernel/security/tpm0/binary_bios_measurements';

const STATE_DIR_OPTION = { flags: '--state-dir <dir>', description: 'the agent\'s state directory', defaultValue: DEFAULT_STATE_DIR } as const;
const JSON_OPTION = { flags: '--json', description: 'machine-readable output on stdout' } as const;
const EVENT_LOG_OPTION = {
  flags: '--event-log <file>',
  description: "the machine's TCG event log, sent with the quote ('none' to send none; a missing default file means none)",
  defaultValue: DEFAULT_EVENT_LOG,
} as const;
const EK_OPTION = { flags: '--ek <kind>', description: 'the EK to enroll with: rsa-2048 or ecc-p256', defaultValue: 'rsa-2048' } as const;

export interface EnrollOptions {
  server: string;
  tpm: string;
  stateDir: string;
  ek: string;
  eventLog: string;
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
  options: [{ flags: '--server <url>', description: 'the control plane, e.g. https://rackseal.example', required: true }, TPM_DEVICE_OPTION, STATE_DIR_OPTION, EK_OPTION, EVENT_LOG_OPTION, JSON_OPTION],
  action: async (options) => (await import('./enroll.action')).runEnroll(options as unknown as EnrollOptions),
};

export interface StatusOptions {
  tpm: string;
  stateDir: string;
  json?: boolean;
}

/** `rackseal-agent status`: offline; exit 0 enrolled and the credential opens in this TPM, 1 otherwise. */
export const statusCommand: CommandSpec = {
  name: 'status',
  description: "this machine's enrollment as its state dir records it, and whether its sealed credential opens in this TPM (no server needed)",
  options: [TPM_DEVICE_OPTION, STATE_DIR_OPTION, JSON_OPTION],
  action: async (options) => (await import('./status.action')).runStatus(options as unknown as StatusOptions),
};

export interface RunOptions {
  server?: string;
  tpm: string;
  stateDir: string;
  ek: string;
  eventLog: string;
  interval?: string;
  once?: boolean;
}

/**
 * `rackseal-agent run`: re-attests on a schedule and when the server asks (GET /node/v1/self), so a
 * drift quarantines the machine within one interval; one JSON line per attempt on stdout.
 */
export const runCommand: CommandSpec = {
  name: 'run',
  description: 're-attest on a schedule (and when the server asks), rotating the node credential; one JSON line per attempt',
  options: [
    { flags: '--server <url>', description: 'the control plane (default: the one enrolled with)' },
    TPM_DEVICE_OPTION,
    STATE_DIR_OPTION,
    EK_OPTION,
    EVENT_LOG_OPTION,
    { flags: '--interval <duration>', description: "between attestations, e.g. 30m, 1h (default: the server's, else 1h)" },
    { flags: '--once', description: 'attest once and exit with its outcome (0 attested, 1 refused, 2 unreachable)' },
  ],
  action: async (options) => (await import('./run.action')).runRun(options as unknown as RunOptions),
};
