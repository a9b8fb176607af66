import { constants, createCipheriv, createECDH, createHash, createHmac, createPublicKey, generateKeyPairSync, type KeyObject, publicEncrypt, randomBytes } from 'node:crypto';
import {
  CERTIFIED_DECRYPT_KEY_TEMPLATE,
  CERTIFIED_DECRYPT_KEY_TEMPLATE_ECC,
  EK_TEMPLATE_RSA_L1,
  marshalTpm2bPublic,
  tpmtPublicFromKey,
  type TPMT_PUBLIC,
  unmarshalTpm2bPublic,
} from '@rackseal/tpm2';
import { CONTENT_KEY_LABEL, CONTENT_KEY_OAEP_LABEL, wrapToApprovedPcrPolicy, wrapToCertifiedKey } from '@rackseal/wrapping';
import { formatTable, us } from './measure';

/**
 * Rounds of alternating blocks (wrap, floor, …; the order turned each round) and wraps per block.
 * Blocks of a tenth of a second or more: a scavenge left over from one block (several ms here: every
 * crypto object is a native handle V8 must process) then weighs little on the next.
 */
const ROUNDS = 15;
const BLOCK = 1500;
/**
 * Each variant runs this long before the rounds. A wrap runs far more JavaScript than its floor
 * (checks, the codec, the envelope), which V8 compiles on background threads over the first few
 * thousand calls: measured 80-120 µs of CPU per RSA wrap over the first 2,500, ~40 µs after (the
 * floor settles within a few hundred). A control plane pays that once per process, so the rounds
 * compare steady states.
 */
const WARMUP_MS = 1500;
/** A TLS key with its chain, or a kubelet credential: a few KiB. */
const PAYLOAD = randomBytes(4096);
const ADDRESS = { deliveryId: 'bench-delivery-0001', secretVersion: 1 };
const GCM_TAG_BYTES = 16;

/** What a wrap must at least produce: header ‖ AES-256-GCM(payload, AAD = header) ‖ tag, in one buffer. */
function gcmEnvelope(key: Buffer, header: Buffer, data: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, randomBytes(12));
  cipher.setAAD(header);
  return Buffer.concat([header, cipher.update(data), cipher.final(), cipher.getAuthTag()]);
}

/** A header of the real envelope's size, so the floor's AAD and copy are the same length. */
const headerLike = (envelope: Buffer): Buffer => randomBytes(envelope.length - PAYLOAD.length - GCM_TAG_BYTES);

interface Variant {
  readonly name: string;
  readonly run: () => unknown;
}

interface Timing {
  /** Per block: wall and process CPU (all threads, so GC helpers too) per operation, µs. */
  readonly wallUs: number[];
  readonly cpuUs: number[];
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/**
 * The variants of one binding, block by block in alternating order, so load from other processes
 * on a shared machine falls on the wrap and its floor alike; per-round ratios are read from blocks
 * run back to back.
 */
function interleave(variants: readonly Variant[]): Timing[] {
  const timings: Timing[] = variants.map(() => ({ wallUs: [], cpuUs: [] }));
  for (const variant of variants) {
    const until = performance.now() + WARMUP_MS;
    while (performance.now() < until) {
      variant.run();
    }
  }
  for (let round = 0; round < ROUNDS; round += 1) {
    const order = variants.map((_, i) => i);
    if (round % 2 === 1) {
      order.reverse();
    }
    for (const v of order) {
      const run = variants[v]!.run;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < BLOCK; i += 1) {
        run();
      }
      const wall = ((performance.now() - t0) * 1000) / BLOCK;
      const cpu = process.cpuUsage(cpu0);
      timings[v]!.wallUs.push(wall);
      timings[v]!.cpuUs.push((cpu.user + cpu.system) / BLOCK);
    }
  }
  return timings;
}

/**
 * Issue 13 item 5: envelopes per second for each binding (libs/wrapping, the control plane's side
 * of a delivery) against the raw crypto floor in the same run — the same primitives called
 * directly with node:crypto on the same sizes, no envelope format, no checks, producing the same
 * header ‖ ciphertext ‖ tag buffer (the header random bytes of the real header's length):
 * - certified-key RSA: 32 random bytes, RSA-OAEP-SHA256 of them (label rackseal-content-key-v1\0),
 *   AES-256-GCM of the payload;
 * - certified-key ECC: ephemeral P-256 key + ECDH + one SHA-256 over KDFe's inputs + AES-256-GCM;
 * - pcr-sealed: the content key, the sealed object's seedValue, RSA-OAEP of the 32-byte seed to the
 *   EK (label DUPLICATE\0), the policy (policyRef: one SHA-256; PolicyAuthorize: two), the object's
 *   unique and Name (two SHA-256), the outer wrap (KDFa: two HMACs, AES-128-CFB of the 74-byte
 *   sensitive area, its HMAC), AES-256-GCM.
 * The floors use a KeyObject made once, as libs/tpm2 now keeps one per public area; a last row
 * shows what a KeyObject made per wrap costs (the first wrap to a key not seen recently).
 */
export async function wrapBench(): Promise<string> {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  // As the control plane holds them: TPM2B_PUBLIC bytes (from the key certification, the EK), parsed.
  const parsed = <T extends TPMT_PUBLIC>(pub: T) => unmarshalTpm2bPublic(marshalTpm2bPublic(pub));
  const rsaPublic = parsed(tpmtPublicFromKey(rsa.publicKey, CERTIFIED_DECRYPT_KEY_TEMPLATE));
  const ecc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const eccPublic = parsed(tpmtPublicFromKey(ecc.publicKey, CERTIFIED_DECRYPT_KEY_TEMPLATE_ECC));
  const ek = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ekPublic = parsed(tpmtPublicFromKey(ek.publicKey, EK_TEMPLATE_RSA_L1));
  const rsaJwk = rsa.publicKey.export({ format: 'jwk' });
  const rsaKey = createPublicKey({ key: rsaJwk, format: 'jwk' });
  const ekKey = createPublicKey({ key: ek.publicKey.export({ format: 'jwk' }), format: 'jwk' });
  const jwk = ecc.publicKey.export({ format: 'jwk' });
  const eccX = Buffer.from(jwk.x!, 'base64url');
  const eccPoint = Buffer.concat([Buffer.of(4), eccX, Buffer.from(jwk.y!, 'base64url')]);
  const kdfeLabel = Buffer.from(`${CONTENT_KEY_LABEL}\0`, 'latin1');
  const signingKeyName = Buffer.concat([Buffer.from('000b', 'hex'), randomBytes(32)]);
  const recipient = { ekPublic, group: 'workers', epoch: 1, signingKeyName };
  const rsaHeader = headerLike(wrapToCertifiedKey(rsaPublic, PAYLOAD, ADDRESS));
  const eccHeader = headerLike(wrapToCertifiedKey(eccPublic, PAYLOAD, ADDRESS));
  const pcrHeader = headerLike(wrapToApprovedPcrPolicy(recipient, PAYLOAD, ADDRESS));
  // The sealed object's public area without its unique (keyedHash, SHA-256, attributes, policy, scheme).
  const sealedPublicPrefix = randomBytes(2 + 2 + 4 + 2 + 32 + 2 + 2);
  const oaepRsa = (key: KeyObject, label: Buffer, message: Buffer) =>
    publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: label }, message);

  const groups: { binding: string; variants: Variant[] }[] = [
    {
      binding: 'certified-key RSA-2048',
      variants: [
        { name: 'certified-key RSA-2048: wrapToCertifiedKey', run: () => wrapToCertifiedKey(rsaPublic, PAYLOAD, ADDRESS) },
        {
          name: 'floor: RSA-OAEP-SHA256 + AES-256-GCM',
          run: () => {
            const key = randomBytes(32);
            oaepRsa(rsaKey, CONTENT_KEY_OAEP_LABEL, key);
            gcmEnvelope(key, rsaHeader, PAYLOAD);
          },
        },
        {
          name: '(reference) the same floor, KeyObject made per wrap',
          run: () => {
            const key = randomBytes(32);
            oaepRsa(createPublicKey({ key: rsaJwk, format: 'jwk' }), CONTENT_KEY_OAEP_LABEL, key);
            gcmEnvelope(key, rsaHeader, PAYLOAD);
          },
        },
      ],
    },
    {
      binding: 'certified-key P-256',
      variants: [
        { name: 'certified-key P-256: wrapToCertifiedKey', run: () => wrapToCertifiedKey(eccPublic, PAYLOAD, ADDRESS) },
        {
          name: 'floor: P-256 ECDH + SHA-256 + AES-256-GCM',
          run: () => {
            const e = createECDH('prime256v1');
            e.generateKeys();
            const z = e.computeSecret(eccPoint);
            const key = createHash('sha256').update(Buffer.of(0, 0, 0, 1)).update(z).update(kdfeLabel).update(e.getPublicKey().subarray(1, 33)).update(eccX).digest();
            gcmEnvelope(key, eccHeader, PAYLOAD);
          },
        },
      ],
    },
    {
      binding: 'pcr-sealed (RSA-2048 EK)',
      variants: [
        { name: 'pcr-sealed (RSA-2048 EK): wrapToApprovedPcrPolicy', run: () => wrapToApprovedPcrPolicy(recipient, PAYLOAD, ADDRESS) },
        {
          name: 'floor: policy + RSA-OAEP seed + outer wrap + AES-256-GCM',
          run: () => {
            const contentKey = randomBytes(32);
            const seedValue = randomBytes(32);
            const policyRef = createHash('sha256').update('rackseal pcr approval v1\x00workers\x001').digest();
            const authorized = createHash('sha256').update(Buffer.alloc(32)).update(Buffer.of(0, 0, 1, 0x6a)).update(signingKeyName).digest();
            createHash('sha256').update(authorized).update(policyRef).digest();
            const unique = createHash('sha256').update(seedValue).update(contentKey).digest();
            const name = createHash('sha256').update(sealedPublicPrefix).update(unique).digest();
            const seed = randomBytes(32);
            oaepRsa(ekKey, Buffer.from('DUPLICATE\0'), seed);
            const symKey = createHmac('sha256', seed).update(name).digest().subarray(0, 16);
            const hmacKey = createHmac('sha256', seed).update(name).digest();
            const cipher = createCipheriv('aes-128-cfb', symKey, Buffer.alloc(16));
            // TPM2B_SENSITIVE: sizes and type (8 bytes), seedValue, the data's size, the data.
            const sensitive = Buffer.concat([Buffer.alloc(8), seedValue, Buffer.alloc(2), contentKey]);
            const encrypted = Buffer.concat([cipher.update(sensitive), cipher.final()]);
            createHmac('sha256', hmacKey).update(encrypted).update(name).digest();
            gcmEnvelope(contentKey, pcrHeader, PAYLOAD);
          },
        },
      ],
    },
  ];

  const rows: string[][] = [];
  const perRound: string[] = [];
  for (const { binding, variants } of groups) {
    const timings = interleave(variants);
    const floor = timings[1]!;
    timings.forEach((t, v) => {
      const ratios = t.wallUs.map((w, round) => w / floor.wallUs[round]!);
      const cpuRatio = median(t.cpuUs.map((c, round) => c / floor.cpuUs[round]!));
      rows.push([
        variants[v]!.name,
        us(median(t.wallUs)),
        (1e6 / median(t.wallUs)).toFixed(0),
        us(median(t.cpuUs)),
        v === 1 ? '—' : `${median(ratios).toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`,
        v === 1 ? '—' : `${cpuRatio.toFixed(2)}×`,
      ]);
      if (v === 0) {
        perRound.push(`${binding}: ${ratios.map((r) => r.toFixed(2)).join(', ')}`);
      }
    });
  }
  return [
    `${ROUNDS} rounds × ${BLOCK} wraps per variant of a ${PAYLOAD.length}-byte payload, blocks alternating with the floor's (order turned each round), after ${WARMUP_MS} ms of warm-up each.`,
    `Headers: RSA ${rsaHeader.length} B, P-256 ${eccHeader.length} B, pcr-sealed ${pcrHeader.length} B. Wall and CPU are per wrap, medians of the blocks; ratio = median of the per-round wall ratios to the floor's block (min–max).`,
    '',
    formatTable([['operation', 'wall per wrap', 'per second', 'CPU per wrap', 'ratio to floor (wall)', 'ratio to floor (CPU)'], ...rows]),
    '',
    'Per-round wall ratios:',
    ...perRound.map((line) => `- ${line}`),
  ].join('\n');
}
