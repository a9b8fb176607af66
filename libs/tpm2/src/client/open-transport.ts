import { CharacterDeviceTransport } from './device-transport';
import { SwtpmTcpTransport } from './swtpm-transport';
import type { TpmTransport } from './transport';

/** A --tpm argument that names no transport rackseal speaks. */
export class TpmDeviceSyntaxError extends Error {
  constructor(device: string) {
    super(`unrecognised TPM device ${JSON.stringify(device)}: use /dev/tpmrm0, /dev/tpm0 or swtpm:HOST:PORT`);
    this.name = 'TpmDeviceSyntaxError';
  }
}

/**
 * Opens the transport a DEVICE argument names (docs/architecture.md §6): `swtpm:HOST:PORT` for swtpm's TCP data
 * channel, or a path to a character device (default `/dev/tpmrm0`).
 */
export async function openTransport(device = '/dev/tpmrm0', options: { timeoutMs?: number } = {}): Promise<TpmTransport> {
  const swtpm = /^swtpm:(.+):(\d{1,5})$/.exec(device);
  if (swtpm !== null) {
    const port = Number(swtpm[2]);
    if (port < 1 || port > 65535) {
      throw new TpmDeviceSyntaxError(device);
    }
    return new SwtpmTcpTransport(swtpm[1]!.replace(/^\[|\]$/g, ''), port, options.timeoutMs);
  }
  if (device.startsWith('/')) {
    return CharacterDeviceTransport.open(device, options);
  }
  throw new TpmDeviceSyntaxError(device);
}
