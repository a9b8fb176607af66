import { StateCorruptError, StateNotEnrolledError } from './state-errors';
import { readStateFile, writeStateFile } from './state-files';

/**
 * last-attestation.json: how the agent's latest attestation attempt ended, for `status` (offline).
 * Not secret, not trusted for anything: a missing or unreadable file only means "unknown".
 */
export const LAST_ATTESTATION_FILE = 'last-attestation.json';
const MAX_BYTES = 64 * 1024;

export interface LastAttestation {
  /** ISO 8601 UTC. */
  readonly at: string;
  readonly outcome: 'attested' | 'refused' | 'unreachable' | 'failed';
  /** The machine's state as the server answered it (attested), when known. */
  readonly state?: string;
  /** The server's refusal code (refused). */
  readonly code?: string;
  readonly message?: string;
  /** A policy mismatch's lines, or the summary of a `warn` group's drift. */
  readonly lines?: readonly string[];
}

export async function saveLastAttestation(dir: string, record: LastAttestation): Promise<void> {
  await writeStateFile(dir, LAST_ATTESTATION_FILE, Buffer.from(`${JSON.stringify(record, null, 2)}\n`, 'utf8'));
}

/** The record, or undefined when there is none yet or it does not read as one. */
export async function loadLastAttestation(dir: string): Promise<LastAttestation | undefined> {
  try {
    const parsed = JSON.parse((await readStateFile(dir, LAST_ATTESTATION_FILE, MAX_BYTES)).toString('utf8')) as unknown;
    const record = parsed as Partial<LastAttestation> | null;
    return typeof record?.at === 'string' && typeof record.outcome === 'string' ? (record as LastAttestation) : undefined;
  } catch (error) {
    if (error instanceof StateNotEnrolledError || error instanceof StateCorruptError || error instanceof SyntaxError) {
      return undefined;
    }
    throw error;
  }
}
