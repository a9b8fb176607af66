/**
 * Deliveries on the operator API (issue 14 item 1): one delivery per (secret version, machine), its
 * state and what went wrong — never material, never an envelope.
 *
 *   GET  /v1/deliveries?state=&machine=&secret=&after=&limit=   → DeliveryView[] (ordered by id)
 *   POST /v1/deliveries/:id/retry                                → DeliveryView (failed → pending)
 *   GET  /v1/secrets/:name/versions/:version/deliveries          → VersionDeliveryProgress
 */
import type { SecretBinding, SecretKind } from './secrets';

/**
 * pending → ready → acked | failed | cancelled | expired (libs/deliveries DELIVERY_TRANSITIONS):
 * pending until a worker sealed the envelope, ready in the machine's mailbox, acked once the agent
 * proved it unwrapped it; failed after the last attempt (an operator's retry makes it pending
 * again), cancelled (the machine revoked), expired (not acked before its expiry).
 * A disk key pre-wrapped at import (issue 14 item 6) is `prewrap-pending` until a worker sealed it
 * to the inventory's EK, then `prewrapped` (held for the operator's export, never in a mailbox)
 * until the machine attests and it becomes `pending` — its normal delivery, same version and key.
 */
export const DELIVERY_STATES = ['pending', 'ready', 'acked', 'failed', 'cancelled', 'expired', 'prewrap-pending', 'prewrapped'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

export interface DeliveryView<Time = string> {
  readonly id: string;
  readonly state: DeliveryState;
  readonly secret: { readonly id: string; readonly name: string; readonly kind: SecretKind; readonly version: number };
  readonly machine: { readonly id: string; readonly serial: string };
  readonly binding: SecretBinding;
  /** 1, and one more for each operator retry: the round the current job belongs to. */
  readonly generation: number;
  /** Jobs run for this delivery (all rounds). */
  readonly attempts: number;
  /** The code of the last failure (a `*.*` code, never a secret), null when none. */
  readonly lastError: string | null;
  readonly createdAt: Time;
  readonly readyAt: Time | null;
  readonly ackedAt: Time | null;
  readonly expiresAt: Time;
}

/** GET /v1/deliveries filters besides paging (`after`: the last id of the previous page). */
export interface DeliveriesQuery {
  readonly state?: DeliveryState;
  /** A machine id or serial. */
  readonly machine?: string;
  /** A secret name. */
  readonly secret?: string;
}

/**
 * GET /v1/secrets/:name/versions/:version/deliveries: how far a version's rollout is (what
 * `rackseal secrets rotate` draws its progress bar from). `settled` when nothing is pending or ready
 * any more: every target acked, or some failed (listed by `GET /v1/deliveries?state=failed`).
 */
export interface VersionDeliveryProgress<Time = string> {
  readonly secret: string;
  readonly version: number;
  /** When every delivery of a newer version was acked. */
  readonly retiredAt: Time | null;
  /** Deliveries of the version (one per target machine that could receive it so far). */
  readonly total: number;
  readonly states: { readonly [S in DeliveryState]: number };
  readonly settled: boolean;
}
