import { posix } from 'node:path';
// One file of @rackseal/api-contracts, not its index: boot unlock reads this config (docs/decisions.md
// "Boot unlock loads single files").
import { SECRET_NAME_PATTERN } from '@rackseal/api-contracts/secrets';

/**
 * The agent's config file (`--config`, default /etc/rackseal/agent.yaml): defaults for the
 * commands (server, tpm, stateDir) and, under `installs`, where each secret the machine receives is
 * put. Validated whole when loaded, so a mistake is named before any delivery arrives rather than
 * when one fails to install. Every refusal names the field path (`installs.web.mode`).
 */

/** Who owns a written file: a user or group name (looked up in /etc/passwd, /etc/group) or a number. */
export type Owner = { readonly name: string } | { readonly id: number };

/** A command run after files changed, as an argv (never a shell string); argv[0] an absolute path. */
export type ReloadCommand = readonly string[];

/** Ownership and reload common to the kinds that write files. */
interface FileTargetCommon {
  readonly owner?: Owner;
  readonly group?: Owner;
  readonly reload?: ReloadCommand;
}

/** `tls`: the key (mode `mode`, default 0600), the certificate and the chain (0644: public). */
export interface TlsTarget extends FileTargetCommon {
  readonly kind: 'tls';
  readonly keyPath: string;
  readonly certPath: string;
  readonly chainPath?: string;
  readonly mode: number;
}

/** `kubelet-client`: certificate then key in one PEM (kubeadm's kubelet-client-current.pem), and kubelet.conf. */
export interface KubeletClientTarget extends FileTargetCommon {
  readonly kind: 'kubelet-client';
  readonly pemPath: string;
  readonly kubeconfigPath: string;
}

/** `opaque`: the value's bytes, as they are, to one file. */
export interface OpaqueTarget extends FileTargetCommon {
  readonly kind: 'opaque';
  readonly path: string;
  readonly mode: number;
}

/**
 * `disk`: a LUKS2 device or image file. `header` a detached LUKS2 header; `keySize` the key length
 * in bytes the agent accepts for it (32 or 64); `enrollKeyFile` a key file of an existing keyslot
 * (the installer's) that authorises the first rackseal key when the disk has none yet.
 */
export interface DiskTarget {
  readonly kind: 'disk';
  readonly device: string;
  readonly header?: string;
  readonly keySize?: 32 | 64;
  readonly enrollKeyFile?: string;
}

export type InstallTarget = TlsTarget | KubeletClientTarget | OpaqueTarget | DiskTarget;

export interface AgentConfig {
  readonly server?: string;
  /** A PEM file of the CA the control plane's certificate must chain to (`--server-ca`); only it is trusted. */
  readonly serverCa?: string;
  readonly tpm?: string;
  readonly stateDir?: string;
  /** The IMA measurement list (binary) the agent sends entries of when its group has a runtime policy. */
  readonly imaList?: string;
  /** Keyed by secret name. */
  readonly installs: ReadonlyMap<string, InstallTarget>;
}

/** The config file is unusable: `field` is the path of the offending field ('' for the whole file). */
export class AgentConfigError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    reason: string,
  ) {
    super(`${file}: ${field === '' ? '' : `${field}: `}${reason}`);
    this.name = 'AgentConfigError';
  }
}

/** Default modes: a key or secret value readable by its owner only; public certificates by all. */
export const DEFAULT_SECRET_MODE = 0o600;
export const PUBLIC_FILE_MODE = 0o644;

const KIND_FIELDS = {
  tls: ['kind', 'keyPath', 'certPath', 'chainPath', 'owner', 'group', 'mode', 'reload'],
  'kubelet-client': ['kind', 'pemPath', 'kubeconfigPath', 'owner', 'group', 'reload'],
  opaque: ['kind', 'path', 'owner', 'group', 'mode', 'reload'],
  disk: ['kind', 'device', 'header', 'keySize', 'enrollKeyFile'],
} as const;
type Kind = keyof typeof KIND_FIELDS;

/** A POSIX user or group name as useradd accepts it (an optional trailing $ for Samba machine accounts). */
const ACCOUNT_NAME = /^[a-z_][a-z0-9_-]{0,31}\$?$/i;
/** The largest id; (uid_t)-1 means "unchanged" to chown(2). */
const MAX_ID = 0xfffffffe;

/** Validates a parsed config document (what YAML or JSON gave) as a whole. */
export function parseAgentConfig(document: unknown, file: string): AgentConfig {
  const fail = (field: string, reason: string): never => {
    throw new AgentConfigError(file, field, reason);
  };
  if (document === null || document === undefined) {
    return { installs: new Map() }; // an empty file: no defaults, no installs
  }
  const top = object(document, '', fail);
  onlyFields(top, ['server', 'serverCa', 'tpm', 'stateDir', 'imaList', 'installs'], '', fail);
  const config: { server?: string; serverCa?: string; tpm?: string; stateDir?: string; imaList?: string; installs: Map<string, InstallTarget> } = { installs: new Map() };
  if (top.server !== undefined) {
    config.server = serverUrl(top.server, fail);
  }
  if (top.serverCa !== undefined) {
    config.serverCa = absolutePath(top.serverCa, 'serverCa', fail);
  }
  if (top.tpm !== undefined) {
    config.tpm = text(top.tpm, 'tpm', fail);
  }
  if (top.stateDir !== undefined) {
    config.stateDir = absolutePath(top.stateDir, 'stateDir', fail);
  }
  if (top.imaList !== undefined) {
    config.imaList = absolutePath(top.imaList, 'imaList', fail);
  }
  if (top.installs !== undefined && top.installs !== null) {
    const installs = object(top.installs, 'installs', fail);
    for (const [name, raw] of Object.entries(installs)) {
      if (!SECRET_NAME_PATTERN.test(name)) {
        fail(`installs.${printable(name)}`, 'is not a secret name (1-63 characters: a lowercase letter or digit, then lowercase letters, digits or . _ -)');
      }
      config.installs.set(name, target(raw, `installs.${name}`, fail));
    }
    checkNoSharedPaths(config.installs, fail);
  }
  return config;
}

type Fail = (field: string, reason: string) => never;

function target(raw: unknown, at: string, fail: Fail): InstallTarget {
  const o = object(raw, at, fail);
  const kinds = Object.keys(KIND_FIELDS);
  if (typeof o.kind !== 'string' || !kinds.includes(o.kind)) {
    return fail(`${at}.kind`, `must be one of ${kinds.join(', ')}`);
  }
  const kind = o.kind as Kind;
  onlyFields(o, KIND_FIELDS[kind], at, fail);
  const path = (field: string) => absolutePath(o[field], `${at}.${field}`, fail);
  const optionalPath = (field: string) => (o[field] === undefined ? undefined : path(field));
  const common = (): FileTargetCommon => ({
    ...(o.owner === undefined ? {} : { owner: owner(o.owner, `${at}.owner`, fail) }),
    ...(o.group === undefined ? {} : { group: owner(o.group, `${at}.group`, fail) }),
    ...(o.reload === undefined ? {} : { reload: reload(o.reload, `${at}.reload`, fail) }),
  });
  switch (kind) {
    case 'tls': {
      const chainPath = optionalPath('chainPath');
      return { kind, keyPath: path('keyPath'), certPath: path('certPath'), ...(chainPath === undefined ? {} : { chainPath }), mode: secretMode(o.mode, `${at}.mode`, fail), ...common() };
    }
    case 'kubelet-client':
      return { kind, pemPath: path('pemPath'), kubeconfigPath: path('kubeconfigPath'), ...common() };
    case 'opaque':
      return { kind, path: path('path'), mode: secretMode(o.mode, `${at}.mode`, fail), ...common() };
    case 'disk': {
      const header = optionalPath('header');
      const enrollKeyFile = optionalPath('enrollKeyFile');
      if (o.keySize !== undefined && o.keySize !== 32 && o.keySize !== 64) {
        fail(`${at}.keySize`, 'must be 32 or 64 (bytes of the disk key)');
      }
      return {
        kind,
        device: path('device'),
        ...(header === undefined ? {} : { header }),
        ...(o.keySize === undefined ? {} : { keySize: o.keySize as 32 | 64 }),
        ...(enrollKeyFile === undefined ? {} : { enrollKeyFile }),
      };
    }
  }
}

/** Two installs writing one file would undo each other; two disk secrets on one device would fight over its keyslots. */
function checkNoSharedPaths(installs: ReadonlyMap<string, InstallTarget>, fail: Fail): void {
  const seen = new Map<string, string>();
  for (const [name, t] of installs) {
    const paths: [string, string][] =
      t.kind === 'tls'
        ? [['keyPath', t.keyPath], ['certPath', t.certPath], ...(t.chainPath === undefined ? [] : [['chainPath', t.chainPath] as [string, string]])]
        : t.kind === 'kubelet-client'
          ? [['pemPath', t.pemPath], ['kubeconfigPath', t.kubeconfigPath]]
          : t.kind === 'opaque'
            ? [['path', t.path]]
            : [['device', t.device], ...(t.header === undefined ? [] : [['header', t.header] as [string, string]])];
    for (const [field, path] of paths) {
      const other = seen.get(path);
      if (other !== undefined) {
        fail(`installs.${name}.${field}`, `${path} is also ${other}: each file or device belongs to one install`);
      }
      seen.set(path, `installs.${name}.${field}`);
    }
  }
}

function object(value: unknown, at: string, fail: Fail): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(at, 'must be a mapping');
  }
  return value as Record<string, unknown>;
}

function onlyFields(o: Record<string, unknown>, allowed: readonly string[], at: string, fail: Fail): void {
  const unknown = Object.keys(o).find((key) => !allowed.includes(key));
  if (unknown !== undefined) {
    fail(`${at === '' ? '' : `${at}.`}${printable(unknown)}`, `unknown field (allowed here: ${allowed.join(', ')})`);
  }
}

/** A key from the file, shown with what it holds escaped. */
function printable(key: string): string {
  return JSON.stringify(key).slice(1, -1).slice(0, 80);
}

function text(value: unknown, at: string, fail: Fail): string {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\0')) {
    return fail(at, 'must be a non-empty string without NUL');
  }
  return value;
}

function serverUrl(value: unknown, fail: Fail): string {
  const url = text(value, 'server', fail);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return fail('server', 'must be an http:// or https:// URL');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    fail('server', 'must be an http:// or https:// URL');
  }
  return url;
}

/** Absolute, normalised (no `.`, `..`, `//` or trailing `/`), no NUL: the file written is the one named. */
function absolutePath(value: unknown, at: string, fail: Fail): string {
  if (value === undefined) {
    return fail(at, 'is required');
  }
  const path = text(value, at, fail);
  if (!path.startsWith('/')) {
    fail(at, 'must be an absolute path');
  }
  if (path === '/' || posix.normalize(path) !== path || path.endsWith('/')) {
    fail(at, 'must be a normalised path to a file (no ".", "..", "//" or trailing "/")');
  }
  return path;
}

/**
 * A mode as a quoted octal string ("0640", "640" or "0o640"), at most 0777, no access for others
 * (the file holds a secret). A number is refused: YAML 1.2 reads `0640` as decimal 640, so an
 * unquoted mode would silently mean something else.
 */
function secretMode(value: unknown, at: string, fail: Fail): number {
  if (value === undefined) {
    return DEFAULT_SECRET_MODE;
  }
  if (typeof value === 'number') {
    return fail(at, `must be a quoted octal string such as "0640" (YAML reads an unquoted 0640 as the decimal ${value})`);
  }
  const match = typeof value === 'string' ? /^(?:0o|0)?([0-7]{1,4})$/.exec(value) : null;
  if (match === null) {
    return fail(at, 'must be an octal mode string such as "0600" or "0640"');
  }
  const mode = parseInt(match[1]!, 8);
  if (mode > 0o777) {
    fail(at, 'must be at most 0777 (no setuid, setgid or sticky bit)');
  }
  if ((mode & 0o007) !== 0) {
    fail(at, `gives others access (${value}) to a file that holds a secret; use the group for shared access, e.g. "0640"`);
  }
  if ((mode & 0o400) === 0) {
    fail(at, `does not let the owner read the file (${value})`);
  }
  return mode;
}

function owner(value: unknown, at: string, fail: Fail): Owner {
  if (typeof value === 'number' || (typeof value === 'string' && /^[0-9]+$/.test(value))) {
    const id = Number(value);
    if (!Number.isSafeInteger(id) || id < 0 || id > MAX_ID) {
      return fail(at, `must be a name or a number from 0 to ${MAX_ID}`);
    }
    return { id };
  }
  if (typeof value !== 'string' || !ACCOUNT_NAME.test(value)) {
    return fail(at, 'must be a user or group name (letters, digits, _ and -, starting with a letter or _) or a number');
  }
  return { name: value };
}

function reload(value: unknown, at: string, fail: Fail): ReloadCommand {
  if (typeof value === 'string') {
    return fail(at, 'must be a list of arguments such as [/usr/bin/systemctl, reload, nginx], not a shell string');
  }
  if (!Array.isArray(value) || value.length === 0) {
    return fail(at, 'must be a non-empty list of arguments');
  }
  value.forEach((arg, i) => {
    if (typeof arg !== 'string' || arg.includes('\0')) {
      fail(`${at}[${i}]`, 'must be a string without NUL');
    }
  });
  if (!(value[0] as string).startsWith('/')) {
    fail(`${at}[0]`, 'must be an absolute path to the program (no PATH lookup)');
  }
  return value as string[];
}
