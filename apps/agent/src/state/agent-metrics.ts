import { StateCorruptError, StateNotEnrolledError } from './state-errors';
import { readStateFile, writeStateFile } from './state-files';

/**
 * agent-metrics.json: the agent's own counters (issue 15 item 2), kept in its state dir by
 * `rackseal-agent run` and shown by `rackseal-agent status [--json]`. The agent has no listener of its
 * own (it runs on every machine and must stay small, docs/architecture.md §6): whatever scrapes a
 * machine (a node exporter's textfile collector, a fleet tool) reads them from `status --json`. Not
 * secret and trusted for nothing: a missing or unreadable file only means "no figures yet".
 */
export const AGENT_METRICS_FILE = 'agent-metrics.json';
const MAX_BYTES = 64 * 1024;
/** Longest message kept of the last TPM error (TPM response codes and device errors are short). */
const MAX_MESSAGE = 300;

export const ATTESTATION_OUTCOMES = ['attested', 'refused', 'unreachable', 'failed'] as const;
export const DELIVERY_OUTCOMES = ['delivered', 'delivery-refused', 'delivery-failed', 'mailbox-invalid'] as const;
export type AttestationOutcome = (typeof ATTESTATION_OUTCOMES)[number];
export type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number];

/** `tpm`: the TPM answered with an error or an answer that cannot serve; `device`: missing, busy, unreachable, unparsable bytes. */
export type TpmErrorKind = 'tpm' | 'device';

export interface AgentMetrics {
  /** ISO 8601 UTC: when this state dir's counting began. Counters only grow from there. */
  readonly since: string;
  readonly updatedAt: string;
  /** Attestation attempts of `run`, by outcome (its JSON lines' `outcome`). */
  readonly attestations: Readonly<Record<AttestationOutcome, number>>;
  /** When the last attempt that ended attested did. */
  readonly lastAttestedAt?: string;
  /** Deliveries `run` handled, by outcome (its JSON lines' `outcome`). */
  readonly deliveries: Readonly<Record<DeliveryOutcome, number>>;
  /** The last delivery line: when, how it ended, which secret, the refusal's code. */
  readonly lastDelivery?: { readonly at: string; readonly outcome: DeliveryOutcome; readonly secret?: string; readonly code?: string };
  /** When a delivery was last installed and acked. */
  readonly lastDeliveredAt?: string;
  /** TPM commands that failed (the TPM's error, or the device's), over every TPM use of `run`. */
  readonly tpmErrors: Readonly<Record<TpmErrorKind, number>>;
  readonly lastTpmError?: { readonly at: string; readonly kind: TpmErrorKind; readonly message: string };
}

/** Fresh counters, all zero. */
export function emptyAgentMetrics(now: Date): AgentMetrics {
  const zero = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
  return { since: now.toISOString(), updatedAt: now.toISOString(), attestations: zero(ATTESTATION_OUTCOMES), deliveries: zero(DELIVERY_OUTCOMES), tpmErrors: zero(['tpm', 'device']) };
}

/** One event of `run`, as it changes the counters. */
export type AgentEvent =
  | { readonly type: 'attestation'; readonly at: string; readonly outcome: AttestationOutcome }
  | { readonly type: 'delivery'; readonly at: string; readonly outcome: DeliveryOutcome; readonly secret?: string; readonly code?: string }
  | { readonly type: 'tpm-error'; readonly at: string; readonly kind: TpmErrorKind; readonly message: string };

/** The counters after `event` (pure: the file is written by AgentMetricsRecorder). */
export function recordAgentEvent(metrics: AgentMetrics, event: AgentEvent): AgentMetrics {
  const updatedAt = event.at;
  switch (event.type) {
    case 'attestation':
      return {
        ...metrics,
        updatedAt,
        attestations: { ...metrics.attestations, [event.outcome]: (metrics.attestations[event.outcome] ?? 0) + 1 },
        ...(event.outcome === 'attested' ? { lastAttestedAt: event.at } : {}),
      };
    case 'delivery':
      return {
        ...metrics,
        updatedAt,
        deliveries: { ...metrics.deliveries, [event.outcome]: (metrics.deliveries[event.outcome] ?? 0) + 1 },
        lastDelivery: { at: event.at, outcome: event.outcome, ...(event.secret === undefined ? {} : { secret: event.secret }), ...(event.code === undefined ? {} : { code: event.code }) },
        ...(event.outcome === 'delivered' ? { lastDeliveredAt: event.at } : {}),
      };
    case 'tpm-error':
      return {
        ...metrics,
        updatedAt,
        tpmErrors: { ...metrics.tpmErrors, [event.kind]: (metrics.tpmErrors[event.kind] ?? 0) + 1 },
        lastTpmError: { at: event.at, kind: event.kind, message: event.message.slice(0, MAX_MESSAGE) },
      };
  }
}

/** The stored counters, or undefined when there are none yet or the file does not read as them. */
export async function loadAgentMetrics(dir: string): Promise<AgentMetrics | undefined> {
  try {
    const parsed = JSON.parse((await readStateFile(dir, AGENT_METRICS_FILE, MAX_BYTES)).toString('utf8')) as Partial<AgentMetrics> | null;
    const counters = (value: unknown) => typeof value === 'object' && value !== null && Object.values(value).every((n) => Number.isSafeInteger(n) && (n as number) >= 0);
    return typeof parsed?.since === 'string' && counters(parsed.attestations) && counters(parsed.deliveries) && counters(parsed.tpmErrors) ? (parsed as AgentMetrics) : undefined;
  } catch (error) {
    if (error instanceof StateNotEnrolledError || error instanceof StateCorruptError || error instanceof SyntaxError) {
      return undefined;
    }
    throw error;
  }
}

/**
 * Applies `run`'s events to agent-metrics.json one at a time (each write whole, by rename), starting
 * from what the file holds, so counts survive restarts. A write that fails is dropped: counters are
 * never worth stopping the daemon for.
 */
export class AgentMetricsRecorder {
  private chain: Promise<void> = Promise.resolve();
  private current: AgentMetrics | undefined;

  constructor(private readonly dir: string) {}

  record(event: AgentEvent): Promise<void> {
    this.chain = this.chain.then(async () => {
      this.current ??= (await loadAgentMetrics(this.dir).catch(() => undefined)) ?? emptyAgentMetrics(new Date(event.at));
      this.current = recordAgentEvent(this.current, event);
      await writeStateFile(this.dir, AGENT_METRICS_FILE, Buffer.from(`${JSON.stringify(this.current, null, 2)}\n`, 'utf8'));
    }).catch(() => undefined);
    return this.chain;
  }

  /** Resolves once every event recorded so far is written (or dropped). */
  flush(): Promise<void> {
    return this.chain;
  }
}
