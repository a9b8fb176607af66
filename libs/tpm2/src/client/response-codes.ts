/**
 * TPM_RC decoding, Part 2 §6.6. A response code is either format 0 (bit 7 clear: a TPM 2.0 error
 * with bit 8 set, a warning with bit 11 set, vendor with bit 10) or format 1 (bit 7 set: an error
 * number in bits 0-5 that refers to a handle, a session or a parameter, whose 1-based position is in
 * bits 8-11).
 */

/** Part 2 §6.6.3 RC_FMT1 errors (value with the format bit, position bits clear). */
const FMT1: Readonly<Record<number, [string, string]>> = {
  0x081: ['TPM_RC_ASYMMETRIC', 'asymmetric algorithm not supported or not correct'],
  0x082: ['TPM_RC_ATTRIBUTES', 'inconsistent attributes'],
  0x083: ['TPM_RC_HASH', 'hash algorithm not supported or not appropriate'],
  0x084: ['TPM_RC_VALUE', 'value is out of range or is not correct for the context'],
  0x085: ['TPM_RC_HIERARCHY', 'hierarchy is not enabled or is not correct for the use'],
  0x087: ['TPM_RC_KEY_SIZE', 'key size is not supported'],
  0x088: ['TPM_RC_MGF', 'mask generation function not supported'],
  0x089: ['TPM_RC_MODE', 'mode of operation not supported'],
  0x08a: ['TPM_RC_TYPE', 'the type of the value is not appropriate for the use'],
  0x08b: ['TPM_RC_HANDLE', 'the handle is not correct for the use'],
  0x08c: ['TPM_RC_KDF', 'unsupported key derivation function or function not appropriate for use'],
  0x08d: ['TPM_RC_RANGE', 'value was out of allowed range'],
  0x08e: ['TPM_RC_AUTH_FAIL', 'the authorization HMAC check failed and DA counter incremented'],
  0x08f: ['TPM_RC_NONCE', 'invalid nonce size or nonce value mismatch'],
  0x090: ['TPM_RC_PP', 'authorization requires assertion of physical presence'],
  0x092: ['TPM_RC_SCHEME', 'unsupported or incompatible scheme'],
  0x095: ['TPM_RC_SIZE', 'structure is the wrong size'],
  0x096: ['TPM_RC_SYMMETRIC', 'unsupported symmetric algorithm or key size, or not appropriate for instance'],
  0x097: ['TPM_RC_TAG', 'incorrect structure tag'],
  0x098: ['TPM_RC_SELECTOR', 'union selector is incorrect'],
  0x09a: ['TPM_RC_INSUFFICIENT', 'the TPM was unable to unmarshal a value because there were not enough octets'],
  0x09b: ['TPM_RC_SIGNATURE', 'the signature is not valid'],
  0x09c: ['TPM_RC_KEY', 'key fields are not compatible with the selected use'],
  0x09d: ['TPM_RC_POLICY_FAIL', 'a policy check failed'],
  0x09f: ['TPM_RC_INTEGRITY', 'integrity check failed'],
  0x0a0: ['TPM_RC_TICKET', 'invalid ticket'],
  0x0a1: ['TPM_RC_RESERVED_BITS', 'reserved bits not set to zero as required'],
  0x0a2: ['TPM_RC_BAD_AUTH', 'authorization failure without DA implications'],
  0x0a3: ['TPM_RC_EXPIRED', 'the policy has expired'],
  0x0a4: ['TPM_RC_POLICY_CC', 'the commandCode in the policy is not the commandCode of the command'],
  0x0a5: ['TPM_RC_BINDING', 'public and sensitive portions of an object are not cryptographically bound'],
  0x0a6: ['TPM_RC_CURVE', 'curve not supported'],
  0x0a7: ['TPM_RC_ECC_POINT', 'point is not on the required curve'],
};

/** Part 2 §6.6.3 RC_VER1 errors (format 0, bit 8 set). */
const VER1: Readonly<Record<number, [string, string]>> = {
  0x100: ['TPM_RC_INITIALIZE', 'TPM not initialized by TPM2_Startup or already initialized'],
  0x101: ['TPM_RC_FAILURE', 'commands not being accepted because of a TPM failure'],
  0x103: ['TPM_RC_SEQUENCE', 'improper use of a sequence handle'],
  0x10b: ['TPM_RC_PRIVATE', 'not currently used'],
  0x119: ['TPM_RC_HMAC', 'not currently used'],
  0x120: ['TPM_RC_DISABLED', 'the command is disabled'],
  0x121: ['TPM_RC_EXCLUSIVE', 'command failed because audit sequence required exclusivity'],
  0x124: ['TPM_RC_AUTH_TYPE', 'authorization handle is not correct for command'],
  0x125: ['TPM_RC_AUTH_MISSING', 'command requires an authorization session for handle and it is not present'],
  0x126: ['TPM_RC_POLICY', 'policy failure in math operation or an invalid authPolicy value'],
  0x127: ['TPM_RC_PCR', 'PCR check fail'],
  0x128: ['TPM_RC_PCR_CHANGED', 'PCR have changed since checked'],
  0x12d: ['TPM_RC_UPGRADE', 'the TPM is in field upgrade mode'],
  0x12e: ['TPM_RC_TOO_MANY_CONTEXTS', 'context ID counter is at maximum'],
  0x12f: ['TPM_RC_AUTH_UNAVAILABLE', 'authValue or authPolicy is not available for selected entity'],
  0x130: ['TPM_RC_REBOOT', 'a _TPM_Init and Startup(CLEAR) is required before the TPM can resume operation'],
  0x131: ['TPM_RC_UNBALANCED', 'the protection algorithms (hash and symmetric) are not reasonably balanced'],
  0x142: ['TPM_RC_COMMAND_SIZE', 'command commandSize value is inconsistent with contents of the command buffer'],
  0x143: ['TPM_RC_COMMAND_CODE', 'command code not supported'],
  0x144: ['TPM_RC_AUTHSIZE', 'the value of authorizationSize is out of range or the number of octets in the Authorization Area is greater than required'],
  0x145: ['TPM_RC_AUTH_CONTEXT', 'use of an authorization session with a context command or another command that cannot have an authorization session'],
  0x146: ['TPM_RC_NV_RANGE', 'NV offset+size is out of range'],
  0x147: ['TPM_RC_NV_SIZE', 'requested allocation size is larger than allowed'],
  0x148: ['TPM_RC_NV_LOCKED', 'NV access locked'],
  0x149: ['TPM_RC_NV_AUTHORIZATION', 'NV access authorization fails in command actions'],
  0x14a: ['TPM_RC_NV_UNINITIALIZED', 'an NV Index is used before being initialized or the state saved by TPM2_Shutdown(STATE) could not be restored'],
  0x14b: ['TPM_RC_NV_SPACE', 'insufficient space for NV allocation'],
  0x14c: ['TPM_RC_NV_DEFINED', 'NV Index or persistent object already defined'],
  0x150: ['TPM_RC_BAD_CONTEXT', 'context in TPM2_ContextLoad() is not valid'],
  0x151: ['TPM_RC_CPHASH', 'cpHash value already set or not correct for use'],
  0x152: ['TPM_RC_PARENT', 'handle for parent is not a valid parent'],
  0x153: ['TPM_RC_NEEDS_TEST', 'some function needs testing'],
  0x154: ['TPM_RC_NO_RESULT', 'returned when an internal function cannot process a request due to an unspecified problem'],
  0x155: ['TPM_RC_SENSITIVE', 'the sensitive area did not unmarshal correctly after decryption'],
};

/** Part 2 §6.6.3 RC_WARN warnings (format 0, bit 11 set). */
const WARN: Readonly<Record<number, [string, string]>> = {
  0x901: ['TPM_RC_CONTEXT_GAP', 'gap for context ID is too large'],
  0x902: ['TPM_RC_OBJECT_MEMORY', 'out of memory for object contexts'],
  0x903: ['TPM_RC_SESSION_MEMORY', 'out of memory for session contexts'],
  0x904: ['TPM_RC_MEMORY', 'out of shared object/session memory or need space for internal operations'],
  0x905: ['TPM_RC_SESSION_HANDLES', 'out of session handles'],
  0x906: ['TPM_RC_OBJECT_HANDLES', 'out of object handles'],
  0x907: ['TPM_RC_LOCALITY', 'bad locality'],
  0x908: ['TPM_RC_YIELDED', 'the TPM has suspended operation on the command'],
  0x909: ['TPM_RC_CANCELED', 'the command was canceled'],
  0x90a: ['TPM_RC_TESTING', 'TPM is performing self-tests'],
  0x920: ['TPM_RC_NV_RATE', 'the TPM is rate-limiting accesses to prevent wearout of NV'],
  0x921: ['TPM_RC_LOCKOUT', 'authorizations for objects subject to DA protection are not allowed at this time because the TPM is in DA lockout mode'],
  0x922: ['TPM_RC_RETRY', 'the TPM was not able to start the command'],
  0x923: ['TPM_RC_NV_UNAVAILABLE', 'the command may require writing of NV and NV is not currently accessible'],
};

const ORDINALS = ['1st', '2nd', '3rd', '4th', '5th', '6th', '7th'];
for (let i = 0; i <= 6; i += 1) {
  (WARN as Record<number, [string, string]>)[0x910 + i] = [`TPM_RC_REFERENCE_H${i}`, `the ${ORDINALS[i]} handle in the handle area references a transient object or session that is not loaded`];
  (WARN as Record<number, [string, string]>)[0x918 + i] = [`TPM_RC_REFERENCE_S${i}`, `the ${ORDINALS[i]} authorization session handle references a session that is not loaded`];
}

export type RcPosition =
  | { readonly kind: 'handle'; readonly index: number }
  | { readonly kind: 'session'; readonly index: number }
  | { readonly kind: 'parameter'; readonly index: number };

export interface DecodedResponseCode {
  readonly code: number;
  /** The code without its position bits, e.g. 0x09d for 0x99d. */
  readonly base: number;
  /** e.g. TPM_RC_POLICY_FAIL; TPM_RC_VENDOR_… or TPM_RC_UNKNOWN_… when the table has no name. */
  readonly name: string;
  readonly description: string;
  readonly position?: RcPosition;
  readonly warning: boolean;
}

const hex3 = (n: number) => `0x${n.toString(16).padStart(3, '0')}`;

export function decodeResponseCode(code: number): DecodedResponseCode {
  if ((code & 0x080) !== 0) {
    const base = 0x080 | (code & 0x03f);
    const number = (code >> 8) & 0xf;
    let position: RcPosition | undefined;
    if ((code & 0x040) !== 0) {
      position = { kind: 'parameter', index: number };
    } else if ((number & 0x8) !== 0) {
      position = { kind: 'session', index: number & 0x7 };
    } else if (number !== 0) {
      position = { kind: 'handle', index: number };
    }
    const [name, description] = FMT1[base] ?? [`TPM_RC_UNKNOWN_${hex3(base)}`, 'unknown format-one error'];
    return { code, base, name, description, position, warning: false };
  }
  if ((code & 0x400) !== 0) {
    return { code, base: code, name: `TPM_RC_VENDOR_${hex3(code)}`, description: 'vendor-defined response code', warning: false };
  }
  const table = (code & 0x800) !== 0 ? WARN : (code & 0x100) !== 0 ? VER1 : undefined;
  const [name, description] = table?.[code] ?? [`TPM_RC_UNKNOWN_${hex3(code)}`, (code & 0x100) === 0 && (code & 0x800) === 0 ? 'a TPM 1.2 response code' : 'unknown response code'];
  return { code, base: code, name, description, warning: (code & 0x800) !== 0 };
}

/** Response codes after which the same command may simply be sent again (Part 2 §6.6.3 warnings). */
export const RETRYABLE_CODES: ReadonlySet<number> = new Set([0x908, 0x90a, 0x922]);
