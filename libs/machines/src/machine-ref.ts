import { SERIAL_PATTERN } from '@rackseal/api-contracts';
import type { MachineRef } from './machine';
import { MachineRefError } from './machine-errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * How an operator names a machine: its id (a UUID, any case) or its serial. A UUID-shaped text is
 * always read as an id: the id is what every API answer and audit record carries. Anything else must
 * be a serial an import could have stored (SERIAL_PATTERN); other text is refused before the
 * database is asked.
 */
export function parseMachineRef(text: string): MachineRef {
  if (UUID.test(text)) {
    return { id: text.toLowerCase() };
  }
  if (!SERIAL_PATTERN.test(text)) {
    throw new MachineRefError(text);
  }
  return { serial: text };
}
