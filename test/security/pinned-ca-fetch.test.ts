/**
 * The agent's and the CLI's pinned-CA fetch (libs/command-line/src/pinned-ca-fetch.ts) against a
 * plain node:https server with a certificate from a locally made CA: the bytes of a streamed upload
 * and of the answer arrive whole, an answer without content is one, the trust is the pinned CA only
 * (a wrong CA, and a certificate for another name, refused with their codes), a plain-HTTP URL is
 * refused before anything is sent, and the CA file is checked.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { CaFileError, pinnedCaFetch, readCaFile, untrustedCertificateCode } from '@rackseal/command-line/pinned-ca-fetch';
import { TlsTestCa } from '../support/tls-ca';

describe('pinned-CA fetch', () => {
  let rightCa: TlsTestCa;
  let wrongCa: TlsTestCa;
  let server: Server;
  let origin: string;
  let requests = 0;
  let serverCert: { cert: Buffer; key: Buffer };

  beforeAll(async () => {
    [rightCa, wrongCa] = await Promise.all([TlsTestCa.create(), TlsTestCa.create()]);
    const cert = await rightCa.issueServer();
    serverCert = { cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) };
    server = createServer(serverCert, (request, response) => {
      requests += 1;
      if (request.url === '/empty') {
        response.writeHead(204).end();
        return;
      }
      const hash = createHash('sha256');
      let length = 0;
      request.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        length += chunk.length;
      });
      request.on('end', () => {
        response.writeHead(201, { 'content-type': 'application/json', 'x-echo': String(request.headers['x-test']) });
        response.end(JSON.stringify({ method: request.method, length, sha256: hash.digest('hex') }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await Promise.all([rightCa, wrongCa].map((ca) => ca?.remove()));
  });

  it('streams a 3 MiB upload and reads the answer, headers and status as fetch does', async () => {
    const fetchPinned = pinnedCaFetch(readCaFile(rightCa.certFile));
    const bytes = randomBytes(3 * 1024 * 1024);
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let offset = 0; offset < bytes.length; offset += 64 * 1024) {
          controller.enqueue(bytes.subarray(offset, offset + 64 * 1024));
        }
        controller.close();
      },
    });
    const response = await fetchPinned(`${origin}/upload`, { method: 'POST', headers: { 'x-test': 'yes' }, body, duplex: 'half' } as RequestInit);
    expect([response.status, response.headers.get('x-echo'), await response.json()]).toEqual([201, 'yes', { method: 'POST', length: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') }]);
    const small = await fetchPinned(`${origin}/json`, { method: 'PUT', body: '{"a":1}' });
    expect(await small.json()).toEqual({ method: 'PUT', length: 7, sha256: createHash('sha256').update('{"a":1}').digest('hex') });
    const empty = await fetchPinned(`${origin}/empty`);
    expect([empty.status, await empty.text()]).toEqual([204, '']);
  });

  it('refuses a server whose certificate does not chain to the pinned CA, and one that names another host, before any request reaches it', async () => {
    const before = requests;
    const wrong = await pinnedCaFetch(readCaFile(wrongCa.certFile))(`${origin}/x`).catch((error: unknown) => error);
    expect(untrustedCertificateCode(wrong)).toMatch(/^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/);
    // The right CA, but the URL names a host the certificate does not (it names 127.0.0.1 and localhost):
    // the same server also listening on 127.0.0.2 (loopback too).
    const second = createServer({ cert: serverCert.cert, key: serverCert.key }, (_request, response) => {
      requests += 1;
      response.end();
    });
    await new Promise<void>((resolve) => second.listen(0, '127.0.0.2', resolve));
    try {
      const misnamed = await pinnedCaFetch(readCaFile(rightCa.certFile))(`https://127.0.0.2:${(second.address() as AddressInfo).port}/x`).catch((error: unknown) => error);
      expect(untrustedCertificateCode(misnamed)).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    } finally {
      second.closeAllConnections();
      await new Promise((resolve) => second.close(resolve));
    }
    expect(requests).toBe(before);
  });

  it('refuses a plain-HTTP URL with a pinned CA, and CA files that hold no certificate', async () => {
    const plain = await pinnedCaFetch(readCaFile(rightCa.certFile))('http://127.0.0.1:1/x').catch((error: unknown) => error);
    expect((plain as { cause?: { code?: string } }).cause?.code).toBe('ERR_PINNED_CA_NEEDS_HTTPS');
    const notPem = join(rightCa.dir, 'not-a-ca.pem');
    writeFileSync(notPem, 'hello\n');
    expect(() => readCaFile(notPem)).toThrow(CaFileError);
    expect(() => readCaFile(notPem)).toThrow(/holds no PEM certificate/);
    const broken = join(rightCa.dir, 'broken.pem');
    writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(() => readCaFile(broken)).toThrow(/certificate 1 is not a valid X\.509 certificate/);
    expect(() => readCaFile(join(rightCa.dir, 'missing.pem'))).toThrow(/does not exist/);
  });

  it('refuses a CA path that is not a regular file at once (a directory, /dev/zero, a FIFO), never reading it forever', () => {
    // The directory first: before the fix it failed with EISDIR, and the others would have hung this worker.
    expect(() => readCaFile(rightCa.dir)).toThrow(`CA file ${rightCa.dir} is not a regular file`);
    expect(() => readCaFile('/dev/zero')).toThrow('CA file /dev/zero is not a regular file');
    const fifo = join(rightCa.dir, 'ca.fifo');
    execFileSync('mkfifo', [fifo]);
    expect(() => readCaFile(fifo)).toThrow(`CA file ${fifo} is not a regular file`);
  });
});
