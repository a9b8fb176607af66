/**
 * The cluster's Kubernetes CA as an operator already has one (kubeadm makes it; rackseal only
 * imports it, README `rackseal ca import`): a self-signed ECDSA P-256 CA (RFC 5280 §4.2.1.9 cA,
 * §4.2.1.3 keyCertSign) made in memory, so its key reaches `rackseal ca import … -` on stdin and
 * never touches a file.
 */
import { generateKeyPairSync, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

type X509Crypto = NonNullable<Parameters<typeof x509.X509CertificateGenerator.create>[1]>;
const crypto = webcrypto as unknown as X509Crypto;
const DAY_MS = 86_400_000;

export async function kubernetesCa(): Promise<{ certificatePem: string; keyPem: Buffer }> {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
  const pkcs8 = pair.privateKey.export({ type: 'pkcs8', format: 'der' });
  const privateKey = await crypto.subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign']);
  const publicKey = await crypto.subtle.importKey('spki', pair.publicKey.export({ type: 'spki', format: 'der' }), algorithm, true, ['verify']);
  pkcs8.fill(0);
  const notBefore = new Date(Date.now() - 5 * 60_000);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: `01${randomBytes(15).toString('hex')}`,
      name: [{ CN: ['kubernetes'] }],
      notBefore,
      notAfter: new Date(notBefore.getTime() + 30 * DAY_MS),
      keys: { privateKey, publicKey },
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { certificatePem: certificate.toString('pem'), keyPem: Buffer.from(pair.privateKey.export({ type: 'pkcs8', format: 'pem' })) };
}
