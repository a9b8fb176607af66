import { DELIVERY_STATES, DELIVERY_TRANSITIONS, isDeliveryState, isLegalDeliveryTransition } from './delivery-state';

describe('the delivery state machine', () => {
  it('has an entry for every state and names only states', () => {
    expect(Object.keys(DELIVERY_TRANSITIONS).sort()).toEqual([...DELIVERY_STATES].sort());
    for (const targets of Object.values(DELIVERY_TRANSITIONS)) {
      expect(targets.every(isDeliveryState)).toBe(true);
    }
  });

  it('ends in acked, cancelled and expired, and never leaves acked', () => {
    expect(DELIVERY_TRANSITIONS.acked).toEqual([]);
    expect(DELIVERY_TRANSITIONS.cancelled).toEqual([]);
    expect(DELIVERY_TRANSITIONS.expired).toEqual([]);
  });

  it('reaches ready only from pending, acked only from ready, and pending again only from failed', () => {
    const into = (to: string) => DELIVERY_STATES.filter((from) => isLegalDeliveryTransition(from, to as never));
    expect(into('ready')).toEqual(['pending']);
    expect(into('acked')).toEqual(['ready']);
    expect(into('pending')).toEqual(['failed']);
    expect(isDeliveryState('sent')).toBe(false);
  });
});
