/**
 * The startup snapshot's build-time warm-up (apps/agent/src/unlock-snapshot-warm*.ts; bench/README.md,
 * "unlock: the TPM half warmed at build time"): the unlock's pure front runs on its samples, and its
 * TPM half replays the recorded exchange through unwrapEnvelope — really verifying it (a changed
 * response byte is refused by the client's checks) — with node:crypto's randomBytes deterministic
 * for that run only and put back after, whether the replay verified or not. A change to the TPM
 * client's unlock path that stops the replay fails here: record it again with
 * bench/record-unlock-warm.ts.
 */
import nodeCrypto from 'node:crypto';
import { warmUnlockPath } from '../apps/agent/src/unlock-snapshot-warm';
import { deterministicRandomBytes, WARM_RANDOM_LABEL, warmUnlockTpmPath, withDeterministicRandom } from '../apps/agent/src/unlock-snapshot-warm-tpm';
import { WARM_TRANSCRIPT } from '../apps/agent/src/unlock-warm-transcript';

describe('the startup snapshot warm-up', () => {
  it('runs the pure front on its samples', () => {
    expect(() => warmUnlockPath()).not.toThrow();
  });

  it('replays all 15 recorded commands through unwrapEnvelope, and puts randomBytes back', async () => {
    const randomBytes = nodeCrypto.randomBytes;
    await expect(warmUnlockTpmPath()).resolves.toBe(15);
    expect(nodeCrypto.randomBytes).toBe(randomBytes);
    expect(nodeCrypto.randomBytes(16).equals(nodeCrypto.randomBytes(16))).toBe(false);
    // The payload's parse matched the throwaway key's base64: RegExp's legacy statics no longer hold it.
    expect([RegExp.input, RegExp.lastMatch]).toEqual(['', '']);
  });

  it('is refused when a recorded response changes (the HMACs are checked), and puts randomBytes back', async () => {
    const randomBytes = nodeCrypto.randomBytes;
    const responses = [...WARM_TRANSCRIPT.responses];
    // The last response with sessions (tag TPM_ST_SESSIONS, 0x8002: the Unseal's): its last byte is
    // inside the response HMAC of its authorization area (TPM 2.0 Part 1 §18.8), which the client checks.
    const at = responses.map((r) => r.slice(0, 4)).lastIndexOf('8002');
    const changed = Buffer.from(responses[at]!, 'hex');
    changed[changed.length - 1]! ^= 0x01;
    responses[at] = changed.toString('hex');
    expect(at).toBeGreaterThan(0);
    await expect(warmUnlockTpmPath({ ...WARM_TRANSCRIPT, responses })).rejects.toThrow(/TPM2_Unseal: the response fails the integrity check of session 0 \(response HMAC mismatch\)/);
    expect(nodeCrypto.randomBytes).toBe(randomBytes);
  });

  it('is refused when the client sends more commands than were recorded', async () => {
    await expect(warmUnlockTpmPath({ ...WARM_TRANSCRIPT, responses: WARM_TRANSCRIPT.responses.slice(0, 5) })).rejects.toThrow(/more than the 5 recorded commands/);
  });

  it('draws the same bytes for the same label and order, others for another label', async () => {
    const a = deterministicRandomBytes(WARM_RANDOM_LABEL);
    const b = deterministicRandomBytes(WARM_RANDOM_LABEL);
    expect([a(16).toString('hex'), a(48).length]).toEqual([b(16).toString('hex'), b(48).length]);
    expect(deterministicRandomBytes('other')(16).equals(deterministicRandomBytes(WARM_RANDOM_LABEL)(16))).toBe(false);
    const inside = await withDeterministicRandom(() => Promise.resolve(nodeCrypto.randomBytes(16)));
    expect(inside.equals(deterministicRandomBytes(WARM_RANDOM_LABEL)(16))).toBe(true);
  });
});
