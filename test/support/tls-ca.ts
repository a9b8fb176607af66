import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTool } from './tpm2-tools';

/** A server certificate and its key, as TLS_CERT_FILE/TLS_KEY_FILE take them. */
export interface ServerCertificate {
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * A throwaway TLS certificate authority made with openssl (P-256): its certificate is what an agent
 * or the CLI pins (`--server-ca`), and it issues control plane certificates for 127.0.0.1 and
 * localhost. Two of them are a right CA and a wrong one: same subject name, different keys.
 */
export class TlsTestCa {
  readonly certFile: string;
  private readonly keyFile: string;
  private issued = 0;

  private constructor(readonly dir: string) {
    this.certFile = join(dir, 'ca.pem');
    this.keyFile = join(dir, 'ca-key.pem');
  }

  static async create(): Promise<TlsTestCa> {
    const ca = new TlsTestCa(await mkdtemp(join(tmpdir(), 'rackseal-tls-ca-')));
    await runTool('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', ca.keyFile]);
    await runTool('openssl', [
      'req', '-x509', '-new', '-key', ca.keyFile, '-sha256', '-days', '2', '-subj', '/CN=rackseal test control plane CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', ca.certFile,
    ]);
    return ca;
  }

  /** A server certificate for 127.0.0.1 and localhost (RFC 6125: names in subjectAltName), signed by this CA. */
  async issueServer(): Promise<ServerCertificate> {
    this.issued += 1;
    const base = join(this.dir, `server-${this.issued}`);
    const keyFile = `${base}-key.pem`;
    const certFile = `${base}.pem`;
    await runTool('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile]);
    await runTool('openssl', ['req', '-new', '-key', keyFile, '-subj', '/CN=127.0.0.1', '-out', `${base}.csr`]);
    const extensions = `${base}.ext`;
    await writeFile(extensions, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n');
    await runTool('openssl', [
      'x509', '-req', '-in', `${base}.csr`, '-CA', this.certFile, '-CAkey', this.keyFile, '-CAcreateserial', '-sha256', '-days', '2', '-extfile', extensions, '-out', certFile,
    ]);
    return { certFile, keyFile };
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
