// Single files, not the @rackseal/tpm2 and @rackseal/command-line indexes: boot unlock runs through
// here (docs/decisions.md "Boot unlock loads single files").
import { CliError } from '@rackseal/command-line/cli-error';
import { TpmParseError } from '@rackseal/tpm2/codec/tpm-parse-error';
import { openTransport, TpmDeviceSyntaxError } from '@rackseal/tpm2/client/open-transport';
import { TpmClient } from '@rackseal/tpm2/client/tpm-client';
import { TpmError, TpmTransportError } from '@rackseal/tpm2/client/tpm-errors';
import { TpmAnswerError } from '@rackseal/tpm2/commands/tpm-answer-error';

/**
 * How TPM failures leave a `rackseal-agent tpm …` command (exit codes: docs/architecture.md §5):
 * - the TPM refused (TpmError: its response code and the handle/session/parameter it blames), or
 *   answered but cannot give what was asked (TpmAnswerError): exit 1;
 * - the device is missing, busy, unreachable, timed out or answered bytes that are not a TPM
 *   response (TpmTransportError, TpmParseError), or the --tpm argument names no device: exit 2.
 */
export function tpmCliError(error: unknown): unknown {
  if (error instanceof TpmError || error instanceof TpmAnswerError) {
    return CliError.invalid(error.message);
  }
  if (error instanceof TpmTransportError || error instanceof TpmDeviceSyntaxError) {
    return CliError.usage(error.message);
  }
  if (error instanceof TpmParseError) {
    return CliError.usage(`the TPM's answer does not parse: ${error.message}`);
  }
  return error;
}

/** Which side failed: the TPM (an error response, an unusable answer) or the device (missing, busy, unreachable, not a TPM's bytes). */
export type TpmFailureKind = 'tpm' | 'device';

let failureSink: ((kind: TpmFailureKind, error: Error) => void) | undefined;

/**
 * Tells `sink` of every TPM failure withTpmDevice sees from now on (rackseal-agent run counts them in
 * its state dir: state/agent-metrics.ts). One sink per process; undefined removes it.
 */
export function onTpmFailure(sink: ((kind: TpmFailureKind, error: Error) => void) | undefined): void {
  failureSink = sink;
}

function reportFailure(error: unknown): void {
  if (failureSink === undefined) {
    return;
  }
  if (error instanceof TpmError || error instanceof TpmAnswerError) {
    failureSink('tpm', error);
  } else if (error instanceof TpmTransportError || error instanceof TpmDeviceSyntaxError || error instanceof TpmParseError) {
    failureSink('device', error);
  }
}

/** Opens --tpm, runs `work` with a client, and always closes the device (which frees /dev/tpmrm0's objects). */
export async function withTpmDevice<T>(device: string, work: (client: TpmClient) => Promise<T>): Promise<T> {
  let client: TpmClient;
  try {
    client = new TpmClient(await openTransport(device));
  } catch (error) {
    reportFailure(error);
    throw tpmCliError(error);
  }
  try {
    return await work(client);
  } catch (error) {
    reportFailure(error);
    throw tpmCliError(error);
  } finally {
    await client.close().catch(() => undefined);
  }
}
