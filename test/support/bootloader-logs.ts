/**
 * A real firmware event log (test/fixtures/SOURCES.md) and the same boot with another bootloader:
 * what the dashboard suites boot their swtpm machines with, so that a machine's refusal names the
 * diverging event.
 */
import { readFileSync } from 'node:fs';
import { EV, marshalEventLog, parseEventLog } from '@rackseal/tpm2';
import { fixturePath } from './fixtures';

export const FIRMWARE_LOG = readFileSync(fixturePath('eventlogs', 'crypto_agile_eventlog'));

/** The first boot application measured into PCR 4: the one another bootloader replaces. */
export const BOOT_APP = parseEventLog(FIRMWARE_LOG).events.find((e) => e.pcrIndex === 4 && e.eventType === EV.EV_EFI_BOOT_SERVICES_APPLICATION)!;

/** How a refusal names that event (libs/pcr-policy divergence). */
export const BOOT_APP_DIVERGENCE = `PCR 4: event #${BOOT_APP.index} EV_EFI_BOOT_SERVICES_APPLICATION digest differs`;

/** FIRMWARE_LOG with the boot application's SHA-256 digest changed (another bootloader). */
export function otherBootloaderLog(): Buffer {
  const log = parseEventLog(FIRMWARE_LOG);
  const events = log.events.map((event) =>
    event.index !== BOOT_APP.index ? event : { ...event, digests: event.digests.map((d) => ({ ...d, digest: Buffer.from(d.digest.map((byte) => byte ^ 0xff)) })) },
  );
  return marshalEventLog({ specId: log.specId, events });
}
