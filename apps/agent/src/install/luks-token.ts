import { SecretBytes } from '@rackseal/config/secret-bytes';
import { cryptsetupOk, type LuksDevice, runCryptsetup } from './cryptsetup';
import { InstallError } from './install-errors';
import { LUKS2_SLOTS, type LuksMetadata, luksMetadataFromJson, MAX_TOKEN_APPROVALS_BYTES, MAX_TOKEN_ENVELOPE_BYTES, RACKSEAL_TOKEN_FORMAT, RACKSEAL_TOKEN_TYPE, type RacksealToken } from './luks-token-format';

// The token's format lives in luks-token-format.ts (boot unlock reads it without cryptsetup); what
// the installs import from here is re-exported.
export { LUKS2_SLOTS, type LuksMetadata, MAX_TOKEN_APPROVALS_BYTES, MAX_TOKEN_ENVELOPE_BYTES, RACKSEAL_TOKEN_FORMAT, RACKSEAL_TOKEN_TYPE, type RacksealToken };

/** The device's LUKS2 metadata; `disk.not-luks2` when it is none (or LUKS1), `disk.token-conflict` for a second rackseal token. */
export async function readLuksMetadata(luks: LuksDevice): Promise<LuksMetadata> {
  const result = await runCryptsetup(luks, ['luksDump', '--dump-json-metadata']);
  if (result.exitCode !== 0) {
    throw new InstallError('disk.not-luks2', `${luks.header ?? luks.device} is not a readable LUKS2 ${luks.header === undefined ? 'device' : 'header'}: ${result.lastError}`);
  }
  let json: { keyslots?: Record<string, unknown>; tokens?: Record<string, unknown> };
  try {
    json = JSON.parse(result.stdout.toString('utf8')) as typeof json;
  } catch {
    throw new InstallError('disk.not-luks2', `${luks.device}: cryptsetup luksDump did not print JSON metadata`);
  }
  return luksMetadataFromJson(json, luks.device);
}

/** The device's rackseal token, if it has one: what `rackseal-agent unlock` reads at boot, offline. */
export async function readRacksealToken(device: string, options: { header?: string; cryptsetup?: string } = {}): Promise<RacksealToken | undefined> {
  return (await readLuksMetadata({ device, ...options })).token;
}

/** Writes `token` as token `tokenId`, replacing what that id held (cryptsetup token import). */
export async function writeRacksealToken(luks: LuksDevice, token: Omit<RacksealToken, 'tokenId'>, tokenId: number, replace: boolean): Promise<void> {
  const json = JSON.stringify({
    type: RACKSEAL_TOKEN_TYPE,
    keyslots: token.keyslot === undefined ? [] : [String(token.keyslot)],
    format: RACKSEAL_TOKEN_FORMAT,
    secret: token.secret,
    ...(token.generation === undefined ? {} : { generation: token.generation }),
    ...(token.envelope === undefined ? {} : { envelope: token.envelope.toString('base64') }),
    ...(token.pending === undefined ? {} : { pending: { keyslot: String(token.pending.keyslot), generation: token.pending.generation } }),
    ...(token.retiring.length === 0 ? {} : { retiring: token.retiring.map(String) }),
    ...(token.approvals === undefined ? {} : { approvals: token.approvals }),
  });
  // The JSON goes on stdin like a key would: not secret, but an argv has no room for an envelope.
  await cryptsetupOk(luks, ['token', 'import', '--json-file=-', '--token-id', String(tokenId), ...(replace ? ['--token-replace'] : [])], [new SecretBytes(Buffer.from(json, 'utf8'))]);
}
