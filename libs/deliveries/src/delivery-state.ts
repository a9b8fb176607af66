/**
 * A delivery's lifecycle (issue 14 item 1) as one state machine:
 *
 *   pending ──▶ ready ──▶ acked
 *     │  ▲        │
 *     │  └─failed │ (an operator's retry, or the machine attesting again)
 *     ▼           ▼
 *   failed, cancelled, expired
 *
 * and pending, ready, acked ──▶ pending in a new round: the re-wrap of a `pcr-sealed` delivery when
 * its group's approval epoch moves on (the old envelope no longer opens).
 *
 * A disk key pre-wrapped at import (issue 14 item 6) starts before that:
 *
 *   prewrap-pending ──▶ prewrapped ──(the machine attests)──▶ pending (a new round, same version)
 *          ▲                 │
 *          └─────────────────┘ (an epoch bump: sealed again at the new epoch)
 *
 * and either ──▶ cancelled (revoked, retired), prewrap-pending ──▶ failed (its last attempt).
 *
 * pending: planned, its job sealing it; ready: sealed, in the machine's mailbox; acked: the agent
 * proved it unwrapped it (final); failed: the last attempt failed (dead letter); cancelled: the
 * machine was revoked, or the version retired; expired: not acked before expires_at. Every move is one conditional UPDATE
 * (`… WHERE id = $1 AND state = $from RETURNING`) in DeliveriesRepository, so of two racers exactly
 * one moves it.
 */
import { DELIVERY_STATES, type DeliveryState } from '@rackseal/api-contracts';

// The names are part of the operator API (GET /v1/deliveries): declared in its contract.
export { DELIVERY_STATES, type DeliveryState };

export const DELIVERY_TRANSITIONS: { readonly [From in DeliveryState]: readonly DeliveryState[] } = {
  pending: ['ready', 'failed', 'cancelled', 'expired', 'pending'],
  ready: ['acked', 'cancelled', 'expired', 'pending'],
  acked: ['pending'],
  failed: ['pending', 'cancelled'],
  cancelled: [],
  expired: [],
  'prewrap-pending': ['prewrapped', 'pending', 'failed', 'cancelled', 'prewrap-pending'],
  prewrapped: ['pending', 'prewrap-pending', 'cancelled'],
};

export function isDeliveryState(value: unknown): value is DeliveryState {
  return typeof value === 'string' && (DELIVERY_STATES as readonly string[]).includes(value);
}

export function isLegalDeliveryTransition(from: DeliveryState, to: DeliveryState): boolean {
  return DELIVERY_TRANSITIONS[from].includes(to);
}
