import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { RacksealConfig } from '@rackseal/config';

/** TLS_CERT_FILE or TLS_KEY_FILE could not be used: the control plane does not start (never falls back to plain HTTP). */
export class TlsSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsSetupError';
  }
}

/** What the HTTPS server is built with. */
export interface HttpsOptions {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** TLS 1.2 at least (RFC 9325 §3.1.1: TLS 1.0 and 1.1 must not be negotiated). */
  readonly minVersion: 'TLSv1.2';
}

/**
 * The certificate chain and key of TLS_CERT_FILE/TLS_KEY_FILE, read once at boot and checked to
 * form a usable pair (createSecureContext refuses a key that does not match the certificate), or
 * undefined when TLS is not configured. Errors name the file, never the key's bytes.
 */
export function httpsOptionsOf(config: Pick<RacksealConfig, 'http'>): HttpsOptions | undefined {
  const tls = config.http.tls;
  if (tls === null) {
    return undefined;
  }
  const read = (path: string, what: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new TlsSetupError(`${what} ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'unknown error'})`);
    }
  };
  const options: HttpsOptions = { cert: read(tls.certFile, 'TLS_CERT_FILE'), key: read(tls.keyFile, 'TLS_KEY_FILE'), minVersion: 'TLSv1.2' };
  try {
    createSecureContext(options);
  } catch (error) {
    // OpenSSL's reason (e.g. "key values mismatch", "no start line"), not the file's content.
    throw new TlsSetupError(`TLS_CERT_FILE ${tls.certFile} and TLS_KEY_FILE ${tls.keyFile} are not a PEM certificate chain and its private key: ${(error as Error).message}`);
  }
  return options;
}
