import { marshal } from '../codec/tpm-writer';
import { TPM_CC } from '../constants';
import type { TPMS_AUTH_COMMAND } from '../client/session-auth';
import type { TpmClient } from '../client/tpm-client';

/** Part 3 §28 Context Management: removing what a command loaded, and persisting objects. */

/**
 * TPM2_FlushContext (Part 3 §28.4): removes a transient object or a session from the TPM. The
 * handle is a parameter, not a handle-area entry: one no longer loaded is TPM_RC_HANDLE on parameter 1
 * (one outside the TPM's handle ranges, TPM_RC_VALUE).
 */
export async function tpm2FlushContext(client: TpmClient, flushHandle: number): Promise<void> {
  const response = await client.execute({ code: TPM_CC.TPM_CC_FlushContext, parameters: marshal((w) => w.u32(flushHandle)) });
  response.parameters.end();
}

/**
 * TPM2_EvictControl (Part 3 §28.5): with a transient `objectHandle`, copies the object to
 * `persistentHandle` (0x81xxxxxx); with a persistent one, removes it. `auth` is TPM_RH_OWNER for
 * 0x81000000-0x817FFFFF, TPM_RH_PLATFORM above.
 */
export async function tpm2EvictControl(
  client: TpmClient,
  auth: number,
  authAuth: TPMS_AUTH_COMMAND,
  objectHandle: number,
  persistentHandle: number,
): Promise<void> {
  const response = await client.execute({
    code: TPM_CC.TPM_CC_EvictControl,
    handles: [auth, objectHandle],
    sessions: [authAuth],
    parameters: marshal((w) => w.u32(persistentHandle)),
  });
  response.parameters.end();
}
