import { DELIVERY_STATES, DELIVERY_TRANSITIONS, isDeliveryState, isLegalDeliveryTransition } from './delivery-state';

describe('the delivery state machine', () => {
  it('has an entry for every state and names only states', () => {
    expect(Object.keys(DELIVERY_TRANSITIONS).sort()).toEqual([...DELIVERY_STATES].sort());
    for (const targets of Object.values(DELIVERY_TRANSITIONS)) {
      expect(targets.every(isDeliveryState)).toBe(true);
    }
  });

  it('ends in cancelled and expired, and leaves acked only for a re-wrap (a new round, pending)', () => {
    expect(DELIVERY_TRANSITIONS.acked).toEqual(['pending']);
    expect(DELIVERY_TRANSITIONS.cancelled).toEqual([]);
    expect(DELIVERY_TRANSITIONS.expired).toEqual([]);
  });

  it('reaches ready only from pending, acked only from ready, and pending again from failed or a re-wrap', () => {
    const into = (to: string) => DELIVERY_STATES.filter((from) => isLegalDeliveryTransition(from, to as never));
    expect(into('ready')).toEqual(['pending']);
    expect(into('acked')).toEqual(['ready']);
    expect(into('pending')).toEqual(['pending', 'ready', 'acked', 'failed', 'prewrap-pending', 'prewrapped']);
    expect(isDeliveryState('sent')).toBe(false);
  });

  it('gives a pre-wrap an envelope only by its own job, and to the mailbox only through pending (the attestation)', () => {
    const into = (to: string) => DELIVERY_STATES.filter((from) => isLegalDeliveryTransition(from, to as never));
    expect(into('prewrapped')).toEqual(['prewrap-pending']);
    expect(into('prewrap-pending')).toEqual(['prewrap-pending', 'prewrapped']);
    expect(DELIVERY_TRANSITIONS.prewrapped).not.toContain('ready');
    expect(DELIVERY_TRANSITIONS.prewrapped).not.toContain('acked');
  });
});
