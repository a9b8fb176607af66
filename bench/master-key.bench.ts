import { execFileSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { SecretBytes } from '@rackseal/config';
import { EnvMasterKey, type MasterKeyProvider, openEnvelope, rewrapEnvelope, sealEnvelope } from '@rackseal/envelope';
import { Pkcs11MasterKey, Pkcs11Token } from '@rackseal/master-keys';
import { SOFTHSM2_MODULE } from '../test/support/softhsm';
import { createSoftHsmDirectory } from '../test/support/softhsm-directory';
import { formatTable, measure, type Measurement, us } from './measure';

const CONTEXT = 'node-credential:0123456789abcdef0123456789abcdef';
const PLAINTEXT = randomBytes(32);
const ITERATIONS = 5000;

/**
 * Issue 13 item 2: sealing, opening and re-wrapping a 32-byte secret under each master-key provider
 * (env in memory, pkcs11 on SoftHSM2 in a token directory of its own), against the raw floor in the
 * same run: the two AES-256-GCM encryptions a seal cannot avoid, with node:crypto.
 */
export async function masterKeyBench(): Promise<string> {
  const softhsm = await createSoftHsmDirectory();
  // SoftHSM reads it at C_Initialize; this process sets it before anything loads the module.
  process.env.SOFTHSM2_CONF = softhsm.conf;
  const pin = randomBytes(8).toString('hex');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', 'bench', '--pin', pin, '--so-pin', randomBytes(8).toString('hex')], { stdio: 'pipe' });
  const token = Pkcs11Token.open({ module: SOFTHSM2_MODULE, tokenLabel: 'bench', pin: new SecretBytes(Buffer.from(pin)) });
  try {
    const env = new EnvMasterKey(new SecretBytes(randomBytes(32)));
    const envB = new EnvMasterKey(new SecretBytes(randomBytes(32)));
    const hsm = Pkcs11MasterKey.create(token, 'bench-a');
    const hsmB = Pkcs11MasterKey.create(token, 'bench-b');
    const kek = randomBytes(32);
    const floor = await measure('floor: 2 × AES-256-GCM (node:crypto)', () => {
      for (const [key, data] of [[kek, randomBytes(32)], [randomBytes(32), PLAINTEXT]] as const) {
        const cipher = createCipheriv('aes-256-gcm', key, randomBytes(12));
        cipher.setAAD(Buffer.from(CONTEXT));
        Buffer.concat([cipher.update(data), cipher.final(), cipher.getAuthTag()]);
      }
    }, { iterations: ITERATIONS });
    const rows: Measurement[] = [floor];
    for (const [name, key, other] of [['env', env, envB], ['pkcs11 (SoftHSM2)', hsm, hsmB]] as [string, MasterKeyProvider, MasterKeyProvider][]) {
      const blob = sealEnvelope(key, CONTEXT, PLAINTEXT);
      rows.push(await measure(`seal, ${name}`, () => sealEnvelope(key, CONTEXT, PLAINTEXT), { iterations: ITERATIONS }));
      rows.push(await measure(`open, ${name}`, () => openEnvelope(key, CONTEXT, blob), { iterations: ITERATIONS }));
      rows.push(await measure(`re-wrap, ${name} → ${name}`, () => rewrapEnvelope(key, other, CONTEXT, blob), { iterations: ITERATIONS }));
    }
    return [
      `${ITERATIONS} operations each on a 32-byte secret after a warm-up; ratio to the node:crypto floor of one seal.`,
      '',
      formatTable([
        ['operation', 'mean', 'p99', 'per second', 'ratio to floor'],
        ...rows.map((m) => [m.name, us(m.meanUs), us(m.p99Us), m.opsPerSecond.toFixed(0), `${(m.meanUs / floor.meanUs).toFixed(2)}×`]),
      ]),
    ].join('\n');
  } finally {
    token.close();
    await softhsm.remove();
  }
}
