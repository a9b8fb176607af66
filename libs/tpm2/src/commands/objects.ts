import type { TpmReader } from '../codec/tpm-reader';
import { marshal, type TpmWriter } from '../codec/tpm-writer';
import { TPM_CC } from '../constants';
import { objectName } from '../names';
import { writePcrSelection, type TPML_PCR_SELECTION } from '../structures/tpml-pcr-selection';
import { readTpm2bPrivate, type TPM2B_PRIVATE, writeTpm2bPrivate } from '../structures/tpm2b-private';
import { type ParsedPublic, readTpm2bPublic, type TPMT_PUBLIC, writeTpmtPublic } from '../structures/tpmt-public';
import type { CommandAuth } from '../client/session-protocol';
import type { TpmClient } from '../client/tpm-client';
import { tpm2FlushContext } from './context-management';
import { readTicket, type TPMT_TK } from './tickets';
import { TpmAnswerError } from './tpm-answer-error';

/**
 * Object commands of Part 3 §12 (Create, Load, LoadExternal, ReadPublic) and §24 (CreatePrimary);
 * FlushContext and EvictControl are in context-management.ts. Each function sends exactly one
 * command; choosing the authorization (password or policy session) is the caller's business.
 */

/** Part 2 §6.5.2: not (yet) in constants.ts's TPM_CC table, which names the commands policies use. */
export const TPM_CC_LoadExternal = 0x00000167;

/** Part 2 §10.5.3 TPM2B_NAME: a digest with its nameAlg (2 + 64) or a 4-byte handle. */
const MAX_NAME = 66;
const MAX_DIGEST = 64;

/**
 * Part 2 §11.1.15 TPMS_SENSITIVE_CREATE: the authValue the new object gets and, for a sealed
 * data object, the data. Both empty for the keys rackseal makes (authorization is by policy or by
 * an empty password; Part 1 §19.8).
 */
export interface TPMS_SENSITIVE_CREATE {
  readonly userAuth: Buffer;
  readonly data: Buffer;
}

export const EMPTY_SENSITIVE_CREATE: TPMS_SENSITIVE_CREATE = { userAuth: Buffer.alloc(0), data: Buffer.alloc(0) };

/** Part 2 §11.1.16 TPM2B_SENSITIVE_CREATE. */
function writeSensitiveCreate(w: TpmWriter, sensitive: TPMS_SENSITIVE_CREATE): void {
  w.sized((inner) => inner.tpm2b(sensitive.userAuth).tpm2b(sensitive.data));
}

/**
 * TPM2B_PUBLIC for a command: a public area parsed from the TPM is sent as the exact bytes it came
 * from (its Name is the hash of those bytes), a template is marshalled.
 */
export function writePublicArea(w: TpmWriter, pub: TPMT_PUBLIC | ParsedPublic): void {
  if ('raw' in pub && Buffer.isBuffer(pub.raw)) {
    w.tpm2b(pub.raw);
  } else {
    w.sized((inner) => writeTpmtPublic(inner, pub));
  }
}

/** What CreatePrimary and Create say about the creation (Part 3 §12.1, §24.1), for CertifyCreation. */
export interface CreationOutputs {
  /** TPM2B_CREATION_DATA's content (TPMS_CREATION_DATA), kept as bytes: nothing here parses it. */
  readonly creationData: Buffer;
  readonly creationHash: Buffer;
  readonly creationTicket: TPMT_TK;
}

export interface CreateOptions {
  readonly inSensitive?: TPMS_SENSITIVE_CREATE;
  readonly outsideInfo?: Buffer;
  /** PCRs whose values go into creationData; none by default. */
  readonly creationPCR?: TPML_PCR_SELECTION;
}

function createParameters(inPublic: TPMT_PUBLIC, options: CreateOptions): Buffer {
  return marshal((w) => {
    writeSensitiveCreate(w, options.inSensitive ?? EMPTY_SENSITIVE_CREATE);
    writePublicArea(w, inPublic);
    w.tpm2b(options.outsideInfo ?? Buffer.alloc(0));
    writePcrSelection(w, options.creationPCR ?? []);
  });
}

function readCreationOutputs(r: TpmReader): CreationOutputs {
  return {
    creationData: r.tpm2b('creationData'),
    creationHash: r.tpm2b('creationHash', MAX_DIGEST),
    creationTicket: readTicket(r, 'creationTicket'),
  };
}

/** The TPM's Name for an object must be nameAlg ‖ H(the public area it returned). */
function checkName(command: string, pub: ParsedPublic, name: Buffer): void {
  if (!objectName(pub).equals(name)) {
    throw new TpmAnswerError(command, `the TPM named the object ${name.toString('hex')}, its public area hashes to ${objectName(pub).toString('hex')}`);
  }
}

/**
 * A command that returned a handle loaded something: if its response then does not parse, the
 * handle is flushed before the error propagates, so no caller can leak it.
 */
async function parseOrFlush<T>(client: TpmClient, handle: number, parse: () => T): Promise<T> {
  try {
    return parse();
  } catch (error) {
    await tpm2FlushContext(client, handle).catch(() => undefined);
    throw error;
  }
}

export interface CreatePrimaryResult extends CreationOutputs {
  readonly objectHandle: number;
  readonly outPublic: ParsedPublic;
  readonly name: Buffer;
}

/**
 * TPM2_CreatePrimary (Part 3 §24.1): derives a primary object from `primaryHandle`'s seed
 * (TPM_RH_ENDORSEMENT, _OWNER, _PLATFORM, _NULL) and the template; the same template gives the same
 * key until the seed changes. The object is transient: flush it.
 */
export async function tpm2CreatePrimary(
  client: TpmClient,
  primaryHandle: number,
  primaryAuth: CommandAuth,
  inPublic: TPMT_PUBLIC,
  options: CreateOptions = {},
): Promise<CreatePrimaryResult> {
  const response = await client.execute({
    code: TPM_CC.TPM_CC_CreatePrimary,
    handles: [primaryHandle],
    sessions: [primaryAuth],
    parameters: createParameters(inPublic, options),
    responseHandles: 1,
  });
  const objectHandle = response.handles[0]!;
  return parseOrFlush(client, objectHandle, () => {
    const r = response.parameters;
    const outPublic = readTpm2bPublic(r);
    const creation = readCreationOutputs(r);
    const name = r.tpm2b('name', MAX_NAME);
    r.end();
    checkName('TPM2_CreatePrimary', outPublic, name);
    return { objectHandle, outPublic, name, ...creation };
  });
}

export interface CreateResult extends CreationOutputs {
  /** The new object's sensitive area wrapped by its parent: only that parent, in that TPM, can Load it. */
  readonly outPrivate: TPM2B_PRIVATE;
  readonly outPublic: ParsedPublic;
}

/** TPM2_Create (Part 3 §12.1): a new object under a loaded storage parent; nothing is loaded. */
export async function tpm2Create(
  client: TpmClient,
  parentHandle: number,
  parentAuth: CommandAuth,
  inPublic: TPMT_PUBLIC,
  options: CreateOptions = {},
): Promise<CreateResult> {
  const response = await client.execute({
    code: TPM_CC.TPM_CC_Create,
    handles: [parentHandle],
    sessions: [parentAuth],
    parameters: createParameters(inPublic, options),
  });
  const r = response.parameters;
  const outPrivate = readTpm2bPrivate(r);
  const outPublic = readTpm2bPublic(r);
  const creation = readCreationOutputs(r);
  r.end();
  return { outPrivate, outPublic, ...creation };
}

export interface LoadResult {
  readonly objectHandle: number;
  readonly name: Buffer;
}

/**
 * TPM2_Load (Part 3 §12.2): loads an object made by Create or Import under `parentHandle`. The TPM
 * checks the private area's integrity against the public area's Name, so a mismatched pair is
 * TPM_RC_INTEGRITY rather than a wrong key.
 */
export async function tpm2Load(
  client: TpmClient,
  parentHandle: number,
  parentAuth: CommandAuth,
  inPrivate: TPM2B_PRIVATE,
  inPublic: TPMT_PUBLIC | ParsedPublic,
): Promise<LoadResult> {
  const response = await client.execute({
    code: TPM_CC.TPM_CC_Load,
    handles: [parentHandle],
    sessions: [parentAuth],
    parameters: marshal((w) => {
      writeTpm2bPrivate(w, inPrivate);
      writePublicArea(w, inPublic);
    }),
    responseHandles: 1,
  });
  const objectHandle = response.handles[0]!;
  return parseOrFlush(client, objectHandle, () => {
    const r = response.parameters;
    const name = r.tpm2b('name', MAX_NAME);
    r.end();
    if (!objectName(inPublic).equals(name)) {
      throw new TpmAnswerError('TPM2_Load', `the TPM named the object ${name.toString('hex')}, expected ${objectName(inPublic).toString('hex')}`);
    }
    return { objectHandle, name };
  });
}

/**
 * TPM2_LoadExternal (Part 3 §12.3) of a public area only (an empty TPM2B_SENSITIVE), e.g. a
 * verifier's policy-signing key for VerifySignature → PolicyAuthorize. In TPM_RH_NULL the
 * VerifySignature ticket is a NULL ticket that PolicyAuthorize refuses, so such keys go into a real
 * hierarchy (TPM_RH_OWNER).
 */
export async function tpm2LoadExternal(client: TpmClient, inPublic: TPMT_PUBLIC, hierarchy: number): Promise<LoadResult> {
  const response = await client.execute({
    code: TPM_CC_LoadExternal,
    parameters: marshal((w) => {
      w.u16(0);
      writePublicArea(w, inPublic);
      w.u32(hierarchy);
    }),
    responseHandles: 1,
  });
  const objectHandle = response.handles[0]!;
  return parseOrFlush(client, objectHandle, () => {
    const r = response.parameters;
    const name = r.tpm2b('name', MAX_NAME);
    r.end();
    return { objectHandle, name };
  });
}

export interface ReadPublicResult {
  readonly outPublic: ParsedPublic;
  readonly name: Buffer;
  readonly qualifiedName: Buffer;
}

/** TPM2_ReadPublic (Part 3 §12.4) of a loaded or persistent object; needs no authorization. */
export async function tpm2ReadPublic(client: TpmClient, objectHandle: number): Promise<ReadPublicResult> {
  const response = await client.execute({ code: TPM_CC.TPM_CC_ReadPublic, handles: [objectHandle] });
  const r = response.parameters;
  const outPublic = readTpm2bPublic(r);
  const name = r.tpm2b('name', MAX_NAME);
  const qualifiedName = r.tpm2b('qualifiedName', MAX_NAME);
  r.end();
  checkName('TPM2_ReadPublic', outPublic, name);
  return { outPublic, name, qualifiedName };
}
