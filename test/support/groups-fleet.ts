/**
 * The fleet the groups view's suites (test/groups-api.test.ts, test/ui-groups.test.ts) run on:
 * group `racks` whose canary (swtpm 0, a real firmware log) was promoted as set `current` and
 * attested, two machines booting another bootloader B (swtpm 1 and 2) and one booting a third, C
 * (swtpm 3) — all three quarantined with PCR 4 differing —, one machine never attested; group `lab`
 * with one machine and no policy. Machines attest in-process (test/support/attestation-agent.ts).
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { INestApplication } from '@nestjs/common';
import { InventoryImporter } from '@rackseal/inventory';
import { nodeApiPath, type StartAttestationResponse } from '@rackseal/node-api-contracts';
import { EV, marshalEventLog, parseEventLog, replayEventLog } from '@rackseal/tpm2';
import { VendorCas } from '@rackseal/vendor-cas';
import request from 'supertest';
import { answer, b64, bootWith, withAgent } from './attestation-agent';
import { fixturePath } from './fixtures';
import type { SwtpmFixture, SwtpmMachine } from './swtpm';

/** A real firmware log (test/fixtures/SOURCES.md): what the canary's firmware measured. */
export const CANARY_LOG = readFileSync(fixturePath('eventlogs', 'crypto_agile_eventlog'));
export const SRTM = [0, 1, 2, 3, 4, 5, 6, 7];
/** The first boot application measured into PCR 4: the other machines boot other ones. */
const BOOT_APP = parseEventLog(CANARY_LOG).events.find((e) => e.pcrIndex === 4 && e.eventType === EV.EV_EFI_BOOT_SERVICES_APPLICATION)!;

/** The canary's log with the boot application's digests XORed with `mask` (another bootloader). */
function bootloaderLog(mask: number): Buffer {
  const log = parseEventLog(CANARY_LOG);
  const events = log.events.map((event) => (event.index !== BOOT_APP.index ? event : { ...event, digests: event.digests.map((d) => ({ ...d, digest: Buffer.from(d.digest.map((byte) => byte ^ mask)) })) }));
  return marshalEventLog({ specId: log.specId, events });
}

export const LOG_B = bootloaderLog(0xff);
export const LOG_C = bootloaderLog(0x0f);

/** PCR index (decimal) → lowercase hex of the SHA-256 bank a log replays to, for the SRTM PCRs. */
export function sha256Values(log: Buffer): Record<string, string> {
  const bank = replayEventLog(parseEventLog(log)).banks.get('sha256')!;
  return Object.fromEntries(SRTM.map((pcr) => [String(pcr), bank.get(pcr)!.toString('hex')]));
}

/** Reboots the swtpm with the log's events and attests once with its RSA EK, sending the log: the finish answer. */
export async function attestOnce(app: INestApplication, tpm: SwtpmMachine, log: Buffer): Promise<request.Response> {
  await tpm.reboot();
  await bootWith(tpm, log);
  return withAgent(tpm, 'rsa-2048', async (agent) => {
    const started = await request(app.getHttpServer()).post(nodeApiPath('attestations')).set('Content-Type', 'application/json').send({ ekCertificate: b64(agent.certificate), akPublic: agent.akPublic });
    if (started.status !== 201) {
      throw new Error(`attestation start: ${started.status} ${JSON.stringify(started.body)}`);
    }
    const start = started.body as StartAttestationResponse;
    const { body } = await answer(agent, start);
    return request(app.getHttpServer()).post(nodeApiPath(`attestations/${start.registrationId}/finish`)).set('Content-Type', 'application/json').send({ ...body, eventLog: b64(log) });
  });
}

/** Imports the inventory and runs the attestations described above; needs 4 swtpms and an admin token. */
export async function seedGroupsFleet(app: INestApplication, fixture: SwtpmFixture, adminToken: string): Promise<void> {
  await app.get(VendorCas).addBundle([{ content: await fixture.ca.rootCertPem(), source: 'root' }, { content: await fixture.ca.intermediateCertPem(), source: 'intermediate' }], { addedBy: 'test' });
  const spare = () => fixture.ca.issueEkCert(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
  const csv = [
    'serial,asset_tag,hostname,group,ek_cert,ek_pub_hash',
    `SN-CANARY,,canary.racks,racks,${b64(await fixture.at(0).rsaEkCertDer())},`,
    `SN-B1,,b1.racks,racks,${b64(await fixture.at(1).rsaEkCertDer())},`,
    `SN-B2,,b2.racks,racks,${b64(await fixture.at(2).rsaEkCertDer())},`,
    `SN-C,,c.racks,racks,${b64(await fixture.at(3).rsaEkCertDer())},`,
    `SN-NEVER,,never.racks,racks,${b64(await spare())},`,
    `SN-LAB,,lab1,lab,${b64(await spare())},`,
  ].join('\n');
  const summary = await app.get(InventoryImporter).import(Readable.from([Buffer.from(`${csv}\n`)]), { actor: 'test', fileName: 'inventory.csv' });
  if (summary.status !== 'succeeded') {
    throw new Error(`inventory import: ${JSON.stringify(summary)}`);
  }
  const expectCode = async (response: Promise<request.Response>, code: string): Promise<void> => {
    const body = (await response).body as { code?: string; state?: string };
    if ((body.code ?? body.state) !== code) {
      throw new Error(`expected ${code}, got ${JSON.stringify(body)}`);
    }
  };
  await expectCode(attestOnce(app, fixture.at(0), CANARY_LOG), 'attestation.no-policy');
  const promoted = await request(app.getHttpServer()).post('/v1/groups/racks/policy/promote').set('Authorization', `Bearer ${adminToken}`).send({ machine: 'SN-CANARY', label: 'current' });
  if (promoted.status !== 200) {
    throw new Error(`promote: ${promoted.status} ${JSON.stringify(promoted.body)}`);
  }
  await expectCode(attestOnce(app, fixture.at(0), CANARY_LOG), 'attested');
  await expectCode(attestOnce(app, fixture.at(1), LOG_B), 'attestation.policy-mismatch');
  await expectCode(attestOnce(app, fixture.at(2), LOG_B), 'attestation.policy-mismatch');
  await expectCode(attestOnce(app, fixture.at(3), LOG_C), 'attestation.policy-mismatch');
}
