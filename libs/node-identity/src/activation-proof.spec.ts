import { createHmac, hkdfSync } from 'node:crypto';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { ACTIVATION_PROOF_BYTES, activationProof, NodeIdentityInputError, verifyActivationProof } from './index';

const SECRET = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');
const REGISTRATION = '7b0e3c52-3f7c-4a47-9b1e-0c6f7d1a2b3c';
const NONCE = Buffer.from('f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f', 'hex');

describe('activationProof', () => {
  it('is HMAC-SHA256 under HKDF(secret, "", "rackseal activation proof v1") over the length-prefixed registration ID and nonce', () => {
    // The construction written out independently, so a change of label, layout or hash shows here.
    const key = Buffer.from(hkdfSync('sha256', SECRET, Buffer.alloc(0), Buffer.from('rackseal activation proof v1'), 32));
    const id = Buffer.from(REGISTRATION);
    const message = Buffer.concat([Buffer.from([0, id.length]), id, Buffer.from([0, NONCE.length]), NONCE]);
    const proof = activationProof(SECRET, REGISTRATION, NONCE);
    expect(proof.length).toBe(ACTIVATION_PROOF_BYTES);
    expect(proof.toString('hex')).toBe(createHmac('sha256', key).update(message).digest('hex'));
    // Not the secret, nor a plain HMAC keyed by it: the secret itself is never what crosses the wire.
    expect(proof.equals(SECRET)).toBe(false);
    expect(proof.equals(createHmac('sha256', SECRET).update(message).digest())).toBe(false);
  });

  it('is the same for the secret as SecretBytes or a Buffer', () => {
    expect(activationProof(new SecretBytes(SECRET), REGISTRATION, NONCE).equals(activationProof(SECRET, REGISTRATION, NONCE))).toBe(true);
  });

  it('verifies for the same secret, registration and nonce', () => {
    expect(verifyActivationProof(SECRET, REGISTRATION, NONCE, activationProof(SECRET, REGISTRATION, NONCE))).toBe(true);
  });

  it('is bound to the registration: a proof for another registration does not verify', () => {
    const other = activationProof(SECRET, '8c1f4d63-0000-4000-8000-000000000000', NONCE);
    expect(verifyActivationProof(SECRET, REGISTRATION, NONCE, other)).toBe(false);
  });

  it('is bound to the nonce: a proof over another nonce (a stale one) does not verify', () => {
    const stale = Buffer.from(NONCE);
    stale.writeUInt8(stale.readUInt8(0) ^ 1, 0);
    expect(verifyActivationProof(SECRET, REGISTRATION, NONCE, activationProof(SECRET, REGISTRATION, stale))).toBe(false);
  });

  it('is bound to the secret: a TPM that activated nothing (another secret) cannot make it', () => {
    const guessed = Buffer.alloc(32, 0x5a);
    expect(verifyActivationProof(SECRET, REGISTRATION, NONCE, activationProof(guessed, REGISTRATION, NONCE))).toBe(false);
  });

  it('does not let registration and nonce bytes slide across their boundary', () => {
    // Without length prefixes "…c" + nonce and "…" + "c" ‖ nonce would be the same message.
    const shifted = activationProof(SECRET, REGISTRATION.slice(0, -1), Buffer.concat([Buffer.from(REGISTRATION.slice(-1)), NONCE.subarray(0, 31)]));
    expect(shifted.equals(activationProof(SECRET, REGISTRATION, NONCE.subarray(0, 31)))).toBe(false);
  });

  it.each([
    ['empty', Buffer.alloc(0)],
    ['truncated', activationProof(SECRET, REGISTRATION, NONCE).subarray(0, 31)],
    ['too long', Buffer.concat([activationProof(SECRET, REGISTRATION, NONCE), Buffer.alloc(1)])],
    ['flipped bit', Buffer.from(activationProof(SECRET, REGISTRATION, NONCE).map((b, i) => (i === 31 ? b ^ 0x80 : b)))],
  ])('answers false, without throwing, for a proof from the network that is %s', (_name, proof) => {
    expect(verifyActivationProof(SECRET, REGISTRATION, NONCE, proof)).toBe(false);
  });

  it.each([
    ['a secret of 15 bytes', () => activationProof(Buffer.alloc(15, 1), REGISTRATION, NONCE), /activated secret is 16 to 64 bytes, not 15/],
    ['a secret of 65 bytes', () => activationProof(Buffer.alloc(65, 1), REGISTRATION, NONCE), /activated secret is 16 to 64 bytes, not 65/],
    ['an empty registration ID', () => activationProof(SECRET, '', NONCE), /registration ID is 1 to 128 printable ASCII/],
    ['a registration ID with a space', () => activationProof(SECRET, 'a b', NONCE), /registration ID/],
    ['a nonce of 8 bytes', () => activationProof(SECRET, REGISTRATION, Buffer.alloc(8)), /registration nonce is 16 to 64 bytes/],
  ])('refuses %s with a NodeIdentityInputError naming it', (_name, call, message) => {
    expect(call).toThrow(NodeIdentityInputError);
    expect(call).toThrow(message);
  });
});
