/**
 * A per-test "TPM vendor" CA, made by swtpm's own tooling so the EK certificates look exactly like the
 * ones swtpm_setup issues: EK cert <- CN=swtpm-localca (intermediate) <- CN=swtpm-localca-rootca (root).
 *
 * Every LocalCa gets fresh keys but the SAME subject names, so a second LocalCa is a ready-made
 * "rogue vendor": its certificates look right by name and must fail verification against the first.
 *
 * Layout (the directory doubles as XDG_CONFIG_HOME for swtpm_setup / swtpm_localca):
 *   <dir>/swtpm_setup.conf, swtpm-localca.conf, swtpm-localca.options   (swtpm_setup --create-config-files)
 *   <dir>/var/lib/swtpm-localca/{swtpm-localca-rootca-cert.pem, swtpm-localca-rootca-privkey.pem,
 *                                issuercert.pem, signkey.pem, certserial}
 */
import { createECDH, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runTool } from './tpm2-tools';

/** What swtpm_setup 0.7.1 tells swtpm_localca about the TPM; reused so our extra certs match its own. */
const SWTPM_IDENTITY_ARGS = [
  '--tpm-spec-family', '2.0',
  '--tpm-spec-level', '0',
  '--tpm-spec-revision', '164',
  '--tpm-manufacturer', 'id:00001014',
  '--tpm-model', 'swtpm',
  '--tpm-version', 'id:20191023',
] as const;

/** swtpm_cert curve names for node:crypto JWK curve names. */
const CURVE_IDS: Record<string, string> = { 'P-256': 'secp256r1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' };

export interface LocalCaOptions {
  /** Directory to use (created if missing). Default: a fresh mkdtemp under os.tmpdir(). */
  dir?: string;
}

export class LocalCa {
  /** The CA's private keys live here; pass it as XDG_CONFIG_HOME to swtpm_setup. */
  readonly configHome: string;
  /** --config for swtpm_setup; it names swtpm_localca and this CA's config/options files. */
  readonly setupConfigPath: string;
  readonly localcaConfigPath: string;
  readonly localcaOptionsPath: string;

  private constructor(
    /** Absolute path of the CA directory (removed by remove()). */
    readonly dir: string,
    /** Self-signed root, CN=swtpm-localca-rootca. */
    readonly rootCertPath: string,
    /** Issuer of EK and platform certs, CN=swtpm-localca. */
    readonly intermediateCertPath: string,
    /** The intermediate's private key (what swtpm_cert --signkey takes). */
    readonly signingKeyPath: string,
  ) {
    this.configHome = dir;
    this.setupConfigPath = join(dir, 'swtpm_setup.conf');
    this.localcaConfigPath = join(dir, 'swtpm-localca.conf');
    this.localcaOptionsPath = join(dir, 'swtpm-localca.options');
  }

  static async create(opts: LocalCaOptions = {}): Promise<LocalCa> {
    let dir: string;
    if (opts.dir !== undefined) {
      dir = resolve(opts.dir);
      await mkdir(dir, { recursive: true });
    } else {
      dir = await mkdtemp(join(tmpdir(), 'rackseal-ca-'));
    }
    const env = { XDG_CONFIG_HOME: dir };

    // 'root' is required when running as root (otherwise swtpm_setup refuses to write into root's
    // config dir); 'skip-if-exist' makes re-using an existing dir harmless.
    await runTool('swtpm_setup', ['--create-config-files', 'root,skip-if-exist'], { env });

    // Read the paths swtpm-localca will really use instead of assuming its defaults.
    const conf = parseConf(await readFile(join(dir, 'swtpm-localca.conf'), 'utf8'));
    const statedir = conf.get('statedir');
    const signingKey = conf.get('signingkey');
    const issuerCert = conf.get('issuercert');
    if (statedir === undefined || signingKey === undefined || issuerCert === undefined) {
      throw new Error(`unexpected swtpm-localca.conf in ${dir}: ${JSON.stringify([...conf])}`);
    }
    // swtpm_localca keeps the root next to the signing key under this fixed name.
    const ca = new LocalCa(dir, join(statedir, 'swtpm-localca-rootca-cert.pem'), issuerCert, signingKey);

    // swtpm_localca only creates root + intermediate lazily, on its first signing request. Force that
    // now (with a throw-away P-256 key) so the CA certs exist before any TPM is manufactured and so
    // concurrent swtpm_setup runs do not race to create them.
    if (!(await exists(issuerCert))) {
      const ecdh = createECDH('prime256v1');
      const point = ecdh.generateKeys(); // 04 || X || Y
      await ca.runLocalca(`x=${point.subarray(1, 33).toString('hex')},y=${point.subarray(33).toString('hex')}`);
    }
    for (const path of [ca.rootCertPath, ca.intermediateCertPath, ca.signingKeyPath]) {
      if (!(await exists(path))) {
        throw new Error(`swtpm_localca did not create ${path}`);
      }
    }
    return ca;
  }

  /** Environment for swtpm_setup / swtpm_localca so they pick up this CA's config files. */
  get env(): NodeJS.ProcessEnv {
    return { XDG_CONFIG_HOME: this.configHome };
  }

  rootCertPem(): Promise<string> {
    return readFile(this.rootCertPath, 'utf8');
  }

  intermediateCertPem(): Promise<string> {
    return readFile(this.intermediateCertPath, 'utf8');
  }

  /**
   * Issue a TCG EK certificate (DER) for an RSA or EC public key, exactly as swtpm_setup would:
   * swtpm_localca -> swtpm_cert --tpm2 --type ek, signed by the intermediate, with the CA's serial
   * counter and lock (so it is safe while swtpm_setup runs concurrently).
   */
  async issueEkCert(publicKey: KeyObject): Promise<Buffer> {
    const jwk = publicKey.export({ format: 'jwk' });
    const hex = (b64u: string | undefined): string => {
      if (b64u === undefined) {
        throw new Error('incomplete public key');
      }
      return Buffer.from(b64u, 'base64url').toString('hex');
    };
    let ekParam: string;
    if (jwk.kty === 'RSA') {
      if (jwk.e !== 'AQAB') {
        throw new Error('swtpm_localca only supports RSA exponent 65537');
      }
      ekParam = hex(jwk.n);
    } else if (jwk.kty === 'EC') {
      const curve = CURVE_IDS[jwk.crv ?? ''];
      if (curve === undefined) {
        throw new Error(`unsupported curve ${String(jwk.crv)}`);
      }
      ekParam = `x=${hex(jwk.x)},y=${hex(jwk.y)},id=${curve}`;
    } else {
      throw new Error(`unsupported key type ${String(jwk.kty)}`);
    }
    return this.runLocalca(ekParam);
  }

  /** Delete the CA directory, keys included. Idempotent. */
  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  private async runLocalca(ekParam: string): Promise<Buffer> {
    const out = await mkdtemp(join(this.dir, 'issue-'));
    try {
      await runTool(
        'swtpm_localca',
        [
          '--type', 'ek',
          '--ek', ekParam,
          '--dir', out,
          '--tpm2',
          '--configfile', this.localcaConfigPath,
          '--optsfile', this.localcaOptionsPath,
          ...SWTPM_IDENTITY_ARGS,
        ],
        { env: this.env },
      );
      return await readFile(join(out, 'ek.cert')); // swtpm_localca writes DER to <dir>/ek.cert
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }
}

function parseConf(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([\w-]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) {
      map.set(m[1], m[2]);
    }
  }
  return map;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
