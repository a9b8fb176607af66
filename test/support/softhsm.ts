import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { SecretBytes } from '@rackseal/config';

/** Debian softhsm2's PKCS#11 module. */
export const SOFTHSM2_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface SoftHsmToken {
  /** The SOFTHSM2_CONF of this token's own directory (never the system's /etc/softhsm). */
  readonly conf: string;
  readonly module: string;
  readonly tokenLabel: string;
  readonly pin: string;
  readonly settings: { module: string; tokenLabel: string; pin: SecretBytes };
  /** The environment a rackseal process needs to use it (SOFTHSM2_CONF and the PKCS11_* variables). */
  env(keyLabel: string): NodeJS.ProcessEnv;
  remove(): Promise<void>;
}

/**
 * A fresh SoftHSM2 token of its own label, initialised with softhsm2-util in the run's token
 * directory (SOFTHSM2_CONF, set by the global setup before the workers start).
 */
export async function createSoftHsmToken(tokenLabel = `rs-${randomBytes(4).toString('hex')}`): Promise<SoftHsmToken> {
  const conf = process.env.SOFTHSM2_CONF;
  if (conf === undefined || !conf.includes('rackseal-softhsm-')) {
    throw new Error('SOFTHSM2_CONF is not the test run\'s own (test/support/global-setup.ts sets it); refusing to touch another SoftHSM configuration');
  }
  const pin = randomBytes(8).toString('hex');
  const soPin = randomBytes(8).toString('hex');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', tokenLabel, '--pin', pin, '--so-pin', soPin], {
    env: { ...process.env, SOFTHSM2_CONF: conf },
    stdio: 'pipe',
  });
  return {
    conf,
    module: SOFTHSM2_MODULE,
    tokenLabel,
    pin,
    settings: { module: SOFTHSM2_MODULE, tokenLabel, pin: new SecretBytes(Buffer.from(pin)) },
    env: (keyLabel) => ({ SOFTHSM2_CONF: conf, MASTER_KEY_PROVIDER: 'pkcs11', PKCS11_MODULE: SOFTHSM2_MODULE, PKCS11_TOKEN_LABEL: tokenLabel, PKCS11_PIN: pin, PKCS11_KEY_LABEL: keyLabel }),
    remove: async () => {
      execFileSync('softhsm2-util', ['--delete-token', '--token', tokenLabel], { env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: 'pipe' });
    },
  };
}
