import { InstallError } from './install-errors';

/**
 * rackseal's LUKS2 token: what the disk itself remembers of its rackseal key, the way clevis and
 * systemd-cryptenroll keep theirs (LUKS2 On-Disk Format, "tokens": an object with a `type` and the
 * `keyslots` it is assigned to; every other field is the token type's own). One per device:
 *
 *   {"type":"rackseal","keyslots":["3"],"format":1,"secret":"root-disk","generation":4,
 *    "envelope":"<base64>","pending":{"keyslot":"5","generation":5},"retiring":["2"]}
 *
 * keyslots    the slot the current rackseal key opens ([] until the first key is in)
 * generation  that key's generation; a delivery of the same or an older one is not applied again
 * envelope    the key wrapped to this machine's TPM under its PCR policy (the delivery's envelope),
 *             which boot unlock unwraps offline
 * pending     a slot being added for a generation: written before luksAddKey, so that a crash
 *             between luksAddKey and the token update is recovered (the slot is found again, or
 *             killed if a newer generation overtook it) rather than left with no one to kill it
 * retiring    slots to kill once the current key is proven, kept until they are gone
 * approvals   optional: the group's signed PCR approvals (GET /node/v1/approvals' answer, public
 *             values) the envelope opens with, so that boot unlock needs neither the network nor
 *             the state dir (docs/decisions.md "Boot unlock"); the agent refreshes them
 */
export const RACKSEAL_TOKEN_TYPE = 'rackseal';
export const RACKSEAL_TOKEN_FORMAT = 1;

/**
 * The largest envelope stored: a LUKS2 header of the default 16 KiB metadata has about 12 KiB of
 * JSON area, which the keyslots share (a disk that needs more is formatted with
 * `--luks2-metadata-size`).
 */
export const MAX_TOKEN_ENVELOPE_BYTES = 6 * 1024;

export interface RacksealToken {
  /** The token's id in the header. */
  readonly tokenId: number;
  readonly secret: string;
  readonly keyslot?: number;
  readonly generation?: number;
  readonly envelope?: Buffer;
  readonly pending?: { readonly keyslot: number; readonly generation: number };
  readonly retiring: readonly number[];
  /** The approvals stored beside the envelope (an ApprovalsResponse as JSON, checked by whoever uses it). */
  readonly approvals?: Readonly<Record<string, unknown>>;
}

/** The largest approvals object stored in a token, as JSON: about eight signed sets (each ~450 bytes). */
export const MAX_TOKEN_APPROVALS_BYTES = 4 * 1024;

/** The parts of the LUKS2 metadata (cryptsetup luksDump --dump-json-metadata) an install uses. */
export interface LuksMetadata {
  /** Ids of every keyslot present. */
  readonly keyslots: ReadonlySet<number>;
  /** Ids of every token, any type. */
  readonly tokenIds: ReadonlySet<number>;
  readonly token?: RacksealToken;
}

/** LUKS2 has 32 keyslots and 32 tokens (LUKS2 On-Disk Format, LUKS2_KEYSLOTS_MAX, LUKS2_TOKENS_MAX). */
export const LUKS2_SLOTS = 32;

/**
 * The parts of LUKS2 JSON metadata (LUKS2 On-Disk Format, "JSON area") an install and boot unlock
 * use, however it was read (cryptsetup luksDump, or luks2-header.ts); `disk.token-conflict` for a
 * second rackseal token or one rackseal did not write.
 */
export function luksMetadataFromJson(json: { keyslots?: Record<string, unknown>; tokens?: Record<string, unknown> }, device: string): LuksMetadata {
  const tokens = Object.entries(json.tokens ?? {}).filter(([, t]) => (t as { type?: unknown } | null)?.type === RACKSEAL_TOKEN_TYPE);
  if (tokens.length > 1) {
    throw new InstallError('disk.token-conflict', `${device} has ${tokens.length} rackseal tokens (${tokens.map(([id]) => id).join(', ')}); rackseal writes one: remove the extra with cryptsetup token remove --token-id`);
  }
  const token = tokens[0] === undefined ? undefined : parseToken(Number(tokens[0][0]), tokens[0][1], device);
  return {
    keyslots: new Set(Object.keys(json.keyslots ?? {}).map(Number)),
    tokenIds: new Set(Object.keys(json.tokens ?? {}).map(Number)),
    ...(token === undefined ? {} : { token }),
  };
}

export function parseToken(tokenId: number, raw: unknown, device: string): RacksealToken {
  const bad = (why: string): never => {
    throw new InstallError('disk.token-conflict', `${device}: rackseal token ${tokenId} is not one rackseal writes (${why}); an operator must look at it (cryptsetup token export --token-id ${tokenId})`);
  };
  const o = raw as Record<string, unknown>;
  const allowed = ['type', 'keyslots', 'format', 'secret', 'generation', 'envelope', 'pending', 'retiring', 'approvals'];
  const unknown = Object.keys(o).find((key) => !allowed.includes(key));
  if (unknown !== undefined) {
    bad(`unknown field ${JSON.stringify(unknown).slice(0, 60)}`);
  }
  if (o.format !== RACKSEAL_TOKEN_FORMAT) {
    bad('format is not 1');
  }
  if (typeof o.secret !== 'string' || o.secret.length === 0) {
    bad('no secret name');
  }
  const slot = (value: unknown, what: string): number => {
    const n = typeof value === 'string' && /^[0-9]{1,2}$/.test(value) ? Number(value) : -1;
    return n >= 0 && n < LUKS2_SLOTS ? n : bad(`${what} is not a keyslot id`);
  };
  const generation = (value: unknown, what: string): number => (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 ? value : bad(`${what} is not a generation`));
  if (!Array.isArray(o.keyslots) || o.keyslots.length > 1) {
    bad('keyslots must list at most one slot');
  }
  const keyslots = (o.keyslots as unknown[]).map((s) => slot(s, 'keyslots'));
  if ((keyslots.length === 1) !== (o.generation !== undefined)) {
    bad('a keyslot and a generation go together');
  }
  if (o.envelope !== undefined && (typeof o.envelope !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(o.envelope) || o.envelope.length % 4 !== 0)) {
    bad('envelope is not base64');
  }
  let pending: RacksealToken['pending'];
  if (o.pending !== undefined) {
    const p = o.pending as Record<string, unknown> | null;
    if (typeof p !== 'object' || p === null) {
      bad('pending is not an object');
    }
    pending = { keyslot: slot(p!.keyslot, 'pending.keyslot'), generation: generation(p!.generation, 'pending.generation') };
  }
  if (o.retiring !== undefined && !Array.isArray(o.retiring)) {
    bad('retiring is not a list');
  }
  if (o.approvals !== undefined && (typeof o.approvals !== 'object' || o.approvals === null || Array.isArray(o.approvals) || JSON.stringify(o.approvals).length > MAX_TOKEN_APPROVALS_BYTES)) {
    bad(`approvals is not an object of at most ${MAX_TOKEN_APPROVALS_BYTES} bytes`);
  }
  return {
    tokenId,
    secret: o.secret as string,
    ...(keyslots[0] === undefined ? {} : { keyslot: keyslots[0], generation: generation(o.generation, 'generation') }),
    ...(o.envelope === undefined ? {} : { envelope: Buffer.from(o.envelope as string, 'base64') }),
    ...(pending === undefined ? {} : { pending }),
    retiring: ((o.retiring as unknown[] | undefined) ?? []).map((s) => slot(s, 'retiring')),
    ...(o.approvals === undefined ? {} : { approvals: o.approvals as Record<string, unknown> }),
  };
}
