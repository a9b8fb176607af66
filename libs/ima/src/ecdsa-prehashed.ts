import type { KeyObject } from 'node:crypto';

/**
 * ECDSA verification of a signature over a digest the caller already has (SEC 1 v2 §4.1.4), which
 * IMA signatures are: the signature is over the file's digest, and node:crypto can verify ECDSA only
 * over a message it hashes itself. Public data only, so no constant-time concerns. Curves: the ones
 * IMA keys use in practice (NIST P-256, P-384 and secp256k1, SEC 2 §2.4.1 and §2.5.1).
 */
interface Curve {
  readonly p: bigint;
  readonly a: bigint;
  readonly n: bigint;
  readonly gx: bigint;
  readonly gy: bigint;
}

const CURVES: Record<string, Curve> = {
  prime256v1: {
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    a: 0xffffffff00000001000000000000000000000000fffffffffffffffffffffffcn,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
    gx: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
    gy: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
  },
  secp384r1: {
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
    a: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffcn,
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
    gx: 0xaa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7n,
    gy: 0x3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5fn,
  },
  secp256k1: {
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2fn,
    a: 0n,
    n: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
    gx: 0x79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798n,
    gy: 0x483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8n,
  },
};

export function supportsCurve(name: string | undefined): boolean {
  return name !== undefined && name in CURVES;
}

const mod = (x: bigint, m: bigint): bigint => {
  const r = x % m;
  return r < 0n ? r + m : r;
};

function inverse(x: bigint, m: bigint): bigint {
  let [a, b, u, v] = [mod(x, m), m, 1n, 0n];
  while (a !== 0n) {
    const q = b / a;
    [a, b] = [b - q * a, a];
    [u, v] = [v - q * u, u];
  }
  return mod(v, m);
}

/** Jacobian coordinates (X, Y, Z); Z = 0 is the point at infinity. */
type Point = readonly [bigint, bigint, bigint];
const INFINITY: Point = [1n, 1n, 0n];

function double(c: Curve, [x, y, z]: Point): Point {
  if (z === 0n || y === 0n) {
    return INFINITY;
  }
  const { p, a } = c;
  const yy = mod(y * y, p);
  const s = mod(4n * x * yy, p);
  const zz = mod(z * z, p);
  const m = mod(3n * x * x + a * zz * zz, p);
  const x3 = mod(m * m - 2n * s, p);
  const y3 = mod(m * (s - x3) - 8n * yy * yy, p);
  return [x3, y3, mod(2n * y * z, p)];
}

function add(c: Curve, P: Point, Q: Point): Point {
  if (P[2] === 0n) {
    return Q;
  }
  if (Q[2] === 0n) {
    return P;
  }
  const { p } = c;
  const [x1, y1, z1] = P;
  const [x2, y2, z2] = Q;
  const z1z1 = mod(z1 * z1, p);
  const z2z2 = mod(z2 * z2, p);
  const u1 = mod(x1 * z2z2, p);
  const u2 = mod(x2 * z1z1, p);
  const s1 = mod(y1 * z2 * z2z2, p);
  const s2 = mod(y2 * z1 * z1z1, p);
  if (u1 === u2) {
    return s1 === s2 ? double(c, P) : INFINITY;
  }
  const h = mod(u2 - u1, p);
  const r = mod(s2 - s1, p);
  const hh = mod(h * h, p);
  const hhh = mod(h * hh, p);
  const x3 = mod(r * r - hhh - 2n * u1 * hh, p);
  const y3 = mod(r * (u1 * hh - x3) - s1 * hhh, p);
  return [x3, y3, mod(h * z1 * z2, p)];
}

/** u1·G + u2·Q by one shared double-and-add (Shamir's trick). */
function twoMultiply(c: Curve, u1: bigint, G: Point, u2: bigint, Q: Point): Point {
  const GQ = add(c, G, Q);
  let R = INFINITY;
  const bits = Math.max(u1.toString(2).length, u2.toString(2).length);
  for (let i = bits - 1; i >= 0; i -= 1) {
    R = double(c, R);
    const b1 = (u1 >> BigInt(i)) & 1n;
    const b2 = (u2 >> BigInt(i)) & 1n;
    if (b1 === 1n && b2 === 1n) {
      R = add(c, R, GQ);
    } else if (b1 === 1n) {
      R = add(c, R, G);
    } else if (b2 === 1n) {
      R = add(c, R, Q);
    }
  }
  return R;
}

/** Reads a DER ECDSA-Sig-Value (SEQUENCE { r INTEGER, s INTEGER }), or undefined when malformed. */
function derSignature(sig: Buffer): { r: bigint; s: bigint } | undefined {
  let at = 0;
  const length = (): number | undefined => {
    const first = sig[at++];
    if (first === undefined) {
      return undefined;
    }
    if (first < 0x80) {
      return first;
    }
    if (first === 0x81) {
      return sig[at++];
    }
    return undefined;
  };
  const integer = (): bigint | undefined => {
    if (sig[at++] !== 0x02) {
      return undefined;
    }
    const len = length();
    if (len === undefined || len === 0 || at + len > sig.length) {
      return undefined;
    }
    const value = BigInt(`0x${sig.toString('hex', at, at + len)}`);
    at += len;
    return value;
  };
  if (sig[at++] !== 0x30) {
    return undefined;
  }
  const total = length();
  if (total === undefined || at + total !== sig.length) {
    return undefined;
  }
  const r = integer();
  const s = integer();
  return r === undefined || s === undefined || at !== sig.length ? undefined : { r, s };
}

/** Verifies a DER ECDSA signature over `digest` with an EC public key of a supported curve. */
export function verifyEcdsaPrehashed(key: KeyObject, digest: Buffer, signature: Buffer): boolean {
  const curveName = key.asymmetricKeyDetails?.namedCurve;
  const curve = curveName === undefined ? undefined : CURVES[curveName];
  const rs = derSignature(signature);
  if (curve === undefined || rs === undefined) {
    return false;
  }
  const { r, s } = rs;
  const { n } = curve;
  if (r <= 0n || r >= n || s <= 0n || s >= n) {
    return false;
  }
  const jwk = key.export({ format: 'jwk' });
  const qx = BigInt(`0x${Buffer.from(jwk.x!, 'base64url').toString('hex')}`);
  const qy = BigInt(`0x${Buffer.from(jwk.y!, 'base64url').toString('hex')}`);
  // e: the leftmost bitlen(n) bits of the digest (SEC 1 §4.1.3 step 5).
  const nBits = n.toString(2).length;
  let e = digest.length === 0 ? 0n : BigInt(`0x${digest.toString('hex')}`);
  if (digest.length * 8 > nBits) {
    e >>= BigInt(digest.length * 8 - nBits);
  }
  const w = inverse(s, n);
  const R = twoMultiply(curve, mod(e * w, n), [curve.gx, curve.gy, 1n], mod(r * w, n), [qx, qy, 1n]);
  if (R[2] === 0n) {
    return false;
  }
  const zInv = inverse(R[2], curve.p);
  const x = mod(R[0] * zInv * zInv, curve.p);
  return mod(x, n) === r;
}
