import { generateKeyPairSync } from 'node:crypto';
import { TpmReader } from '../codec/tpm-reader';
import { TpmWriter } from '../codec/tpm-writer';
import { TPM_ALG_ID, TPM_CC, TPM_ST } from '../constants';
import { cpHash, parameterCfb, rpHash, saltedSessionKey, sessionHmac, trimAuthValue } from '../crypto/session-crypto';
import { KDFa } from '../crypto/kdf';
import { tpm2Unseal } from '../commands/keys-and-attestation';
import { tpm2StartSaltedSession } from '../commands/salted-session';
import { tpmtPublicFromKey } from '../keys';
import { SRK_TEMPLATE_RSA } from '../templates';
import type { SaltedSession } from './salted-session';
import { passwordAuth } from './session-auth';
import { TpmClient } from './tpm-client';
import { SessionClosedError, SessionUsageError, TpmResponseIntegrityError } from './tpm-errors';
import type { TpmTransport } from './transport';

/**
 * One salted HMAC session exchange (SHA-256, AES-128-CFB), computed independently with the openssl
 * 3.0 CLI only: KDFa as `openssl kdf -kdfopt mac:HMAC -kdfopt digest:SHA256 -kdfopt salt:<label>
 * -kdfopt hexinfo:<contextU‖contextV> KBKDF` (SP 800-108 counter mode, 32-bit counter and L, 0x00
 * separator: Part 1 §11.4.10.2), the HMACs with `openssl dgst -sha256 -mac HMAC`, the digests with
 * `openssl dgst -sha256`, and the parameters with `openssl enc -aes-128-cfb -nopad`.
 *   salt = 11×32; nonceTPM0 = 01..20; nonceCaller0 = 21..40
 *   TPM2_Unseal (0x15e) of an item named 000b‖33×32, nonceCaller1 = 44×32, sessionAttributes 0x40 (encrypt)
 *   response: nonceTPM1 = 55×32, outData "rackseal unseal vector 32 bytes!"
 *   a command's first parameter "import inner key" under the decrypt attribute with the same nonces
 */
const V = {
  salt: '11'.repeat(32),
  nonceTPM0: '0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20',
  nonceCaller0: '2122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f40',
  sessionKey: '96f8f3f7ae2b6851eb573a22e0caaa18012a73ce483dc4e91df7a0a371b027b4',
  itemName: '000b' + '33'.repeat(32),
  cpHash: 'fb0dc18b615603f9c424afa71a289151ce2367f41fc41514c2e9fbe0c3bce383',
  nonceCaller1: '44'.repeat(32),
  commandHmac: '54a962e8744ee6b8df4037e19092e3dd32de1dea72132c01cf70874c815a1668',
  nonceTPM1: '55'.repeat(32),
  outData: Buffer.from('rackseal unseal vector 32 bytes!').toString('hex'),
  responseKeyIv: '4686e40973b5ae757c0f638635abf53b177ed6a318a5c587345a4cb3b47a2ef7',
  encryptedOutData: '3ebad9bd9c7603b52e3ba3ee76c05233c3adf57a630c07c02b671a3fd8e7f6bd',
  rpHash: 'c7a70d929d03e54006a0d904393b1321626a4da753967e21263f5088e2684b17',
  responseHmac: 'b83cac6ba1ff5caab2d40a2cccf5df2f5f619da0e9889dcbc2d5967e7dce96c2',
  commandKeyIv: '84324d8e73c78c9ffcc1f590d1f93ed239fd28e40f2e39fa2105011ef908986d',
  commandParameter: Buffer.from('import inner key').toString('hex'),
  encryptedCommandParameter: 'cb70f10f0cc64a6671e7354ca28f6135',
} as const;

const hex = (s: string) => Buffer.from(s, 'hex');
const SHA256 = TPM_ALG_ID.TPM_ALG_SHA256;

describe('session crypto against the openssl-computed exchange (Part 1 §19.6, §21.3)', () => {
  it('sessionKey = KDFa(SHA-256, salt, "ATH", nonceTPM, nonceCaller, 256)', () => {
    expect(saltedSessionKey(SHA256, hex(V.salt), hex(V.nonceTPM0), hex(V.nonceCaller0)).toString('hex')).toBe(V.sessionKey);
  });

  it('cpHash and the command HMAC over cpHash ‖ nonceCaller ‖ nonceTPM ‖ sessionAttributes', () => {
    const digest = cpHash(SHA256, TPM_CC.TPM_CC_Unseal, [hex(V.itemName)], Buffer.alloc(0));
    expect(digest.toString('hex')).toBe(V.cpHash);
    expect(sessionHmac(SHA256, hex(V.sessionKey), digest, hex(V.nonceCaller1), hex(V.nonceTPM0), 0x40).toString('hex')).toBe(V.commandHmac);
  });

  it('response: CFB key ‖ IV from KDFa(sessionKey, "CFB", nonceTPM, nonceCaller), rpHash, and the response HMAC', () => {
    expect(KDFa(SHA256, hex(V.sessionKey), 'CFB', hex(V.nonceTPM1), hex(V.nonceCaller1), 256).toString('hex')).toBe(V.responseKeyIv);
    expect(parameterCfb('encrypt', SHA256, hex(V.sessionKey), 128, hex(V.nonceTPM1), hex(V.nonceCaller1), hex(V.outData)).toString('hex')).toBe(V.encryptedOutData);
    expect(parameterCfb('decrypt', SHA256, hex(V.sessionKey), 128, hex(V.nonceTPM1), hex(V.nonceCaller1), hex(V.encryptedOutData)).toString('hex')).toBe(V.outData);
    const params = Buffer.concat([hex('0020'), hex(V.encryptedOutData)]);
    expect(rpHash(SHA256, TPM_CC.TPM_CC_Unseal, params).toString('hex')).toBe(V.rpHash);
    expect(sessionHmac(SHA256, hex(V.sessionKey), hex(V.rpHash), hex(V.nonceTPM1), hex(V.nonceCaller1), 0x40).toString('hex')).toBe(V.responseHmac);
  });

  it('command parameter: nonceNewer is the caller\'s nonce', () => {
    expect(KDFa(SHA256, hex(V.sessionKey), 'CFB', hex(V.nonceCaller1), hex(V.nonceTPM0), 256).toString('hex')).toBe(V.commandKeyIv);
    expect(parameterCfb('encrypt', SHA256, hex(V.sessionKey), 128, hex(V.nonceCaller1), hex(V.nonceTPM0), hex(V.commandParameter)).toString('hex')).toBe(V.encryptedCommandParameter);
  });

  it('authValues lose their trailing zeros; a key size that is not AES is refused', () => {
    expect(trimAuthValue(Buffer.from('70770000', 'hex')).toString('hex')).toBe('7077');
    expect(trimAuthValue(Buffer.alloc(3)).length).toBe(0);
    expect(() => parameterCfb('encrypt', SHA256, Buffer.alloc(32), 100, Buffer.alloc(16), Buffer.alloc(16), Buffer.alloc(4))).toThrow(RangeError);
  });
});

/** A response with sessions (Part 1 §18.4): parameters, then one acknowledgement per session. */
function sessionResponse(parameters: Buffer, acks: readonly { nonce: Buffer; attributes: number; hmac: Buffer }[], handles: readonly number[] = []): Buffer {
  const body = new TpmWriter();
  handles.forEach((h) => body.u32(h));
  body.u32(parameters.length).bytes(parameters);
  for (const ack of acks) {
    body.tpm2b(ack.nonce).u8(ack.attributes).tpm2b(ack.hmac);
  }
  const content = body.toBuffer();
  return new TpmWriter().u16(TPM_ST.TPM_ST_SESSIONS).u32(10 + content.length).u32(0).bytes(content).toBuffer();
}

function noSessionResponse(parameters: Buffer, handles: readonly number[] = []): Buffer {
  const body = new TpmWriter();
  handles.forEach((h) => body.u32(h));
  const content = body.bytes(parameters).toBuffer();
  return new TpmWriter().u16(TPM_ST.TPM_ST_NO_SESSIONS).u32(10 + content.length).u32(0).bytes(content).toBuffer();
}

/** A transport that answers from a script and keeps what it was sent. */
class ScriptedTpm implements TpmTransport {
  readonly description = 'scripted';
  readonly sent: Buffer[] = [];
  constructor(private readonly answers: ((command: Buffer) => Buffer)[]) {}
  async transmit(command: Buffer): Promise<Buffer> {
    this.sent.push(command);
    const next = this.answers.shift();
    if (next === undefined) {
      throw new Error('no more scripted answers');
    }
    return next(command);
  }
  async close(): Promise<void> {}
}

const UNSEAL_ANSWER = Buffer.concat([hex('0020'), hex(V.encryptedOutData)]);
const GOOD_ACK = { nonce: hex(V.nonceTPM1), attributes: 0x40, hmac: hex(V.responseHmac) };

describe('a salted session through TpmClient, replaying the exchange', () => {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const saltKey = { handle: 0x81000001, public: tpmtPublicFromKey(publicKey, SRK_TEMPLATE_RSA) };
  /** The system-chosen randomness of StartAuthSession: the salt first, then the OAEP seed. */
  const replayedRandom = () => {
    const draws = [hex(V.salt), Buffer.alloc(32, 0x77)];
    return (size: number) => draws.shift()!.subarray(0, size);
  };

  async function started(answers: ((command: Buffer) => Buffer)[]): Promise<{ tpm: ScriptedTpm; client: TpmClient; session: SaltedSession }> {
    const tpm = new ScriptedTpm([() => noSessionResponse(Buffer.concat([hex('0020'), hex(V.nonceTPM0)]), [0x02000000]), ...answers]);
    const client = new TpmClient(tpm);
    const session = await tpm2StartSaltedSession(client, saltKey, 'hmac', { nonceCaller: hex(V.nonceCaller0), encapsulation: { random: replayedRandom() } });
    return { tpm, client, session };
  }

  it('StartAuthSession: tpmKey, bind TPM_RH_NULL, nonceCaller, a 256-byte encryptedSalt, TPM_SE_HMAC, AES-128-CFB, SHA-256 (Part 3 §11.1)', async () => {
    const { tpm, session } = await started([]);
    const r = new TpmReader(tpm.sent[0]!, 'StartAuthSession command');
    expect([r.u16('tag'), r.u32('size'), r.u32('code'), r.u32('tpmKey'), r.u32('bind')]).toEqual([TPM_ST.TPM_ST_NO_SESSIONS, tpm.sent[0]!.length, 0x176, 0x81000001, 0x40000007]);
    expect(r.tpm2b('nonceCaller').toString('hex')).toBe(V.nonceCaller0);
    expect(r.tpm2b('encryptedSalt').length).toBe(256);
    expect([r.u8('sessionType'), r.u16('symmetric.algorithm'), r.u16('keyBits'), r.u16('mode'), r.u16('authHash')]).toEqual([0x00, 0x0006, 128, 0x0043, 0x000b]);
    r.end();
    expect({ handle: session.sessionHandle, nonceTPM: session.nonceTPM.toString('hex'), open: session.isOpen }).toEqual({ handle: 0x02000000, nonceTPM: V.nonceTPM0, open: true });
  });

  it('Unseal with the encrypt attribute: the command HMAC is the vector\'s, outData is decrypted, the session closes with the command', async () => {
    const { tpm, client, session } = await started([() => sessionResponse(UNSEAL_ANSWER, [GOOD_ACK])]);
    const outData = await tpm2Unseal(client, 0x80000001, session.use({ entityName: hex(V.itemName), encrypt: true, nonceCaller: hex(V.nonceCaller1) }));
    expect(outData.toString('hex')).toBe(V.outData);
    const sent = tpm.sent[1]!;
    // tag, size, code, itemHandle, authorizationSize, then TPMS_AUTH_COMMAND.
    const r = new TpmReader(sent, 'Unseal command');
    expect([r.u16('tag'), r.u32('size'), r.u32('code'), r.u32('itemHandle'), r.u32('authorizationSize'), r.u32('sessionHandle')]).toEqual([
      TPM_ST.TPM_ST_SESSIONS, sent.length, TPM_CC.TPM_CC_Unseal, 0x80000001, 4 + 2 + 32 + 1 + 2 + 32, 0x02000000,
    ]);
    expect([r.tpm2b('nonce').toString('hex'), r.u8('attributes'), r.tpm2b('hmac').toString('hex')]).toEqual([V.nonceCaller1, 0x40, V.commandHmac]);
    r.end();
    expect(session.isOpen).toBe(false);
    expect(() => session.use()).toThrow(SessionClosedError);
  });

  it('continueSession: the nonce rolls to the TPM\'s new one, which the next command\'s HMAC uses', async () => {
    const attributes = 0x41;
    const params = UNSEAL_ANSWER;
    const digest = rpHash(SHA256, TPM_CC.TPM_CC_Unseal, params);
    // The response of a session kept open: the same exchange with continueSession set.
    const encrypted = parameterCfb('encrypt', SHA256, hex(V.sessionKey), 128, hex(V.nonceTPM1), hex(V.nonceCaller1), hex(V.outData));
    const answer = Buffer.concat([hex('0020'), encrypted]);
    const ack = { nonce: hex(V.nonceTPM1), attributes, hmac: sessionHmac(SHA256, hex(V.sessionKey), rpHash(SHA256, TPM_CC.TPM_CC_Unseal, answer), hex(V.nonceTPM1), hex(V.nonceCaller1), attributes) };
    expect(digest.toString('hex')).toBe(V.rpHash);
    const { tpm, client, session } = await started([() => sessionResponse(answer, [ack]), () => noSessionResponse(Buffer.alloc(0))]);
    await tpm2Unseal(client, 0x80000001, session.use({ entityName: hex(V.itemName), encrypt: true, continueSession: true, nonceCaller: hex(V.nonceCaller1) }));
    expect(session.nonceTPM.toString('hex')).toBe(V.nonceTPM1);
    const nonceCaller2 = Buffer.alloc(32, 0x66);
    await client.execute({ code: TPM_CC.TPM_CC_Unseal, handles: [0x80000001], sessions: [session.use({ entityName: hex(V.itemName), nonceCaller: nonceCaller2 })] }).catch(() => undefined);
    const second = new TpmReader(tpm.sent[2]!, 'second Unseal');
    second.bytesOf(10 + 4 + 4 + 4, 'header, handle, authorizationSize, sessionHandle');
    expect(second.tpm2b('nonce').equals(nonceCaller2)).toBe(true);
    second.u8('attributes');
    const expected = sessionHmac(SHA256, hex(V.sessionKey), hex(V.cpHash), nonceCaller2, hex(V.nonceTPM1), 0x00);
    expect(second.tpm2b('hmac').toString('hex')).toBe(expected.toString('hex'));
  });

  it('the decrypt attribute encrypts the first command parameter\'s buffer, not its size; cpHash covers the encrypted bytes', async () => {
    const { tpm, client, session } = await started([() => noSessionResponse(Buffer.alloc(0))]);
    const rest = hex('abcd');
    const use = session.use({ entityName: hex(V.itemName), decrypt: true, nonceCaller: hex(V.nonceCaller1) });
    await client.execute({ code: TPM_CC.TPM_CC_Import, handles: [0x81000001], sessions: [use], parameters: Buffer.concat([hex('0010'), hex(V.commandParameter), rest]) }).catch(() => undefined);
    const sent = tpm.sent[1]!;
    const parameters = sent.subarray(sent.length - 20);
    expect(parameters.toString('hex')).toBe('0010' + V.encryptedCommandParameter + 'abcd');
    const hmacOffset = sent.length - 20 - 32;
    const expected = sessionHmac(SHA256, hex(V.sessionKey), cpHash(SHA256, TPM_CC.TPM_CC_Import, [hex(V.itemName)], parameters), hex(V.nonceCaller1), hex(V.nonceTPM0), 0x20);
    expect(sent.subarray(hmacOffset, hmacOffset + 32).toString('hex')).toBe(expected.toString('hex'));
  });

  describe('a response that fails its check is TpmResponseIntegrityError, nothing decrypted, the session closed', () => {
    const flip = (bytes: Buffer, at: number) => {
      const copy = Buffer.from(bytes);
      copy[at] = copy[at]! ^ 0x01;
      return copy;
    };
    const cases: [string, () => Buffer][] = [
      ['one bit of the encrypted outData', () => sessionResponse(flip(UNSEAL_ANSWER, 7), [GOOD_ACK])],
      ['the size of outData', () => sessionResponse(flip(UNSEAL_ANSWER, 1).subarray(0, 33), [GOOD_ACK])],
      ['one bit of the response HMAC', () => sessionResponse(UNSEAL_ANSWER, [{ ...GOOD_ACK, hmac: flip(GOOD_ACK.hmac, 31) }])],
      ['another nonceTPM', () => sessionResponse(UNSEAL_ANSWER, [{ ...GOOD_ACK, nonce: flip(GOOD_ACK.nonce, 0) }])],
      ['continueSession added to the acknowledgement', () => sessionResponse(UNSEAL_ANSWER, [{ ...GOOD_ACK, attributes: 0x41 }])],
      ['the session area dropped (TPM_ST_NO_SESSIONS)', () => noSessionResponse(UNSEAL_ANSWER)],
      ['an empty HMAC', () => sessionResponse(UNSEAL_ANSWER, [{ ...GOOD_ACK, hmac: Buffer.alloc(0) }])],
    ];
    it.each(cases)('%s', async (_label, answer) => {
      const { client, session } = await started([answer]);
      const error = await tpm2Unseal(client, 0x80000001, session.use({ entityName: hex(V.itemName), encrypt: true, nonceCaller: hex(V.nonceCaller1) })).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TpmResponseIntegrityError);
      expect({ command: (error as TpmResponseIntegrityError).command, session: (error as TpmResponseIntegrityError).session }).toEqual({ command: 'TPM2_Unseal', session: 0 });
      expect((error as Error).message).not.toContain(V.outData);
      expect(session.isOpen).toBe(false);
    });
  });

  describe('a command the client cannot protect is refused before anything is sent', () => {
    it('two sessions that decrypt', async () => {
      const { tpm, client, session } = await started([]);
      const other = await started([]);
      const sessions = [session.use({ entityName: hex(V.itemName), decrypt: true }), other.session.use({ decrypt: true })];
      await expect(client.execute({ code: TPM_CC.TPM_CC_Import, handles: [0x81000001], sessions, parameters: hex('0000') })).rejects.toThrow(
        new SessionUsageError('TPM2_Import', 'sessions 0 and 1 both decrypt; at most one may'),
      );
      expect(tpm.sent).toHaveLength(1);
    });

    it('a handle with no Name for cpHash (a password-authorized handle beside a salted session)', async () => {
      const { tpm, client, session } = await started([]);
      const sessions = [passwordAuth(), session.use({ entityName: hex(V.itemName), encrypt: true })];
      await expect(client.execute({ code: TPM_CC.TPM_CC_ActivateCredential, handles: [0x80000002, 0x81010001], sessions })).rejects.toThrow(
        new SessionUsageError('TPM2_ActivateCredential', 'handle 0 (0x80000002) has no Name for cpHash'),
      );
      expect(tpm.sent).toHaveLength(1);
    });

    it('the decrypt attribute on a command whose first parameter is not a whole TPM2B', async () => {
      const { tpm, client, session } = await started([]);
      await expect(
        client.execute({ code: TPM_CC.TPM_CC_Import, handles: [0x81000001], sessions: [session.use({ entityName: hex(V.itemName), decrypt: true })], parameters: hex('0005aa') }),
      ).rejects.toBeInstanceOf(SessionUsageError);
      expect(tpm.sent).toHaveLength(1);
    });
  });
});
