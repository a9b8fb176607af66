import { hkdfSync } from 'node:crypto';
import { inspect } from 'node:util';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { deriveNodeCredential, NODE_CREDENTIAL_ID_PATTERN, type NodeCredentialContext, NodeIdentityInputError } from './index';

const SECRET = Buffer.from('a1'.repeat(32), 'hex');
const CONTEXT: NodeCredentialContext = {
  registrationId: '7b0e3c52-3f7c-4a47-9b1e-0c6f7d1a2b3c',
  ekPubHash: '3f'.repeat(32),
  // TPM_ALG_SHA256 (0x000b) ‖ a SHA-256 digest: an AK Name as TPM2 computes it.
  akName: Buffer.concat([Buffer.from([0x00, 0x0b]), Buffer.alloc(32, 0x42)]),
};

/** The info of RFC 5869 for one purpose, written out independently of the code under test. */
function info(purpose: string, context: NodeCredentialContext): Buffer {
  const fields = [Buffer.from('rackseal node credential v1'), Buffer.from(purpose), Buffer.from(context.registrationId), Buffer.from(context.ekPubHash), context.akName];
  return Buffer.concat(fields.flatMap((f) => [Buffer.from([f.length >> 8, f.length & 0xff]), f]));
}

describe('deriveNodeCredential', () => {
  it('is HKDF-SHA256 of the activated secret, empty salt, info = label ‖ purpose ‖ registration ‖ ekPubHash ‖ AK Name (length-prefixed)', () => {
    const credential = deriveNodeCredential(SECRET, CONTEXT);
    const key = Buffer.from(hkdfSync('sha256', SECRET, Buffer.alloc(0), info('key', CONTEXT), 32));
    const id = Buffer.from(hkdfSync('sha256', SECRET, Buffer.alloc(0), info('id', CONTEXT), 16));
    expect(credential.key).toBeInstanceOf(SecretBytes);
    expect(credential.key.reveal().toString('hex')).toBe(key.toString('hex'));
    expect(credential.credentialId).toBe(id.toString('hex'));
    expect(credential.credentialId).toMatch(NODE_CREDENTIAL_ID_PATTERN);
  });

  it('derives the same credential on both sides (the agent with a Buffer, the server with SecretBytes)', () => {
    const agent = deriveNodeCredential(SECRET, CONTEXT);
    const server = deriveNodeCredential(new SecretBytes(SECRET), { ...CONTEXT, akName: Buffer.from(CONTEXT.akName) });
    expect(server.credentialId).toBe(agent.credentialId);
    expect(server.key.reveal().equals(agent.key.reveal())).toBe(true);
  });

  it('keeps the key out of logs and JSON; the ID is not a part of the key', () => {
    const credential = deriveNodeCredential(SECRET, CONTEXT);
    const hexKey = credential.key.reveal().toString('hex');
    expect(inspect(credential)).not.toContain(hexKey);
    expect(JSON.stringify(credential)).toBe(`{"credentialId":"${credential.credentialId}","key":"[redacted]"}`);
    expect(hexKey).not.toContain(credential.credentialId);
  });

  it('rotates on re-attestation: a new registration (new secret) gives another ID and key', () => {
    const first = deriveNodeCredential(SECRET, CONTEXT);
    const again = deriveNodeCredential(Buffer.from('b2'.repeat(32), 'hex'), { ...CONTEXT, registrationId: '9d2a6e71-1111-4111-8111-111111111111' });
    expect(again.credentialId).not.toBe(first.credentialId);
    expect(again.key.reveal().equals(first.key.reveal())).toBe(false);
  });

  it.each([
    ['registration ID', { ...CONTEXT, registrationId: '7b0e3c52-3f7c-4a47-9b1e-0c6f7d1a2b3d' }],
    ['ekPubHash', { ...CONTEXT, ekPubHash: '3f'.repeat(31) + '40' }],
    ['AK Name', { ...CONTEXT, akName: Buffer.concat([Buffer.from([0x00, 0x0b]), Buffer.alloc(32, 0x43)]) }],
  ])('binds the %s: the same secret under a context differing only there gives another ID and key', (_field, context) => {
    const base = deriveNodeCredential(SECRET, CONTEXT);
    const other = deriveNodeCredential(SECRET, context);
    expect(other.credentialId).not.toBe(base.credentialId);
    expect(other.key.reveal().equals(base.key.reveal())).toBe(false);
  });

  it('differs for another secret under the same context', () => {
    expect(deriveNodeCredential(Buffer.alloc(32, 7), CONTEXT).credentialId).not.toBe(deriveNodeCredential(SECRET, CONTEXT).credentialId);
  });

  it.each([
    ['an upper-case ekPubHash', { ...CONTEXT, ekPubHash: '3F'.repeat(32) }, /ekPubHash is 64 lower-case hex digits/],
    ['a short ekPubHash', { ...CONTEXT, ekPubHash: 'ab' }, /ekPubHash/],
    ['an AK Name of 3 bytes', { ...CONTEXT, akName: Buffer.alloc(3) }, /AK Name is 4 to 66 bytes/],
    ['an AK Name of 67 bytes', { ...CONTEXT, akName: Buffer.alloc(67) }, /AK Name is 4 to 66 bytes/],
    ['a registration ID with a NUL', { ...CONTEXT, registrationId: 'a\0b' }, /registration ID/],
  ])('refuses %s with a NodeIdentityInputError naming it', (_name, context, message) => {
    const call = (): unknown => deriveNodeCredential(SECRET, context);
    expect(call).toThrow(NodeIdentityInputError);
    expect(call).toThrow(message);
  });

  it('refuses an activated secret shorter than 16 bytes', () => {
    expect(() => deriveNodeCredential(Buffer.alloc(8), CONTEXT)).toThrow(/activated secret is 16 to 64 bytes, not 8/);
  });
});
