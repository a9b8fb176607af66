import { DeliveryPayloadError } from '@rackseal/node-api-contracts';
import { checkPayloadLabel } from './payload-label';

describe('checkPayloadLabel', () => {
  const payload = { kind: 'opaque' as const, value: Buffer.from('v'), secret: 'app-token' };

  it('accepts a payload whose authenticated name and kind are the mailbox label', () => {
    expect(() => checkPayloadLabel(payload, { secret: 'app-token', kind: 'opaque' })).not.toThrow();
  });

  it.each([
    ['relabelled as another secret', { secret: 'db-password', kind: 'opaque' as const }, payload, 'secret', /is of secret "app-token", not of "db-password"/],
    ['without a name', { secret: 'app-token', kind: 'opaque' as const }, { kind: 'opaque' as const, value: Buffer.from('v') }, 'secret', /is unnamed/],
    ['of another kind', { secret: 'app-token', kind: 'disk' as const }, payload, 'kind', /is a opaque secret, not disk/],
  ])('refuses a payload %s', (_what, label, given, field, message) => {
    let refusal: unknown;
    try {
      checkPayloadLabel(given, label);
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(DeliveryPayloadError);
    expect((refusal as DeliveryPayloadError).field).toBe(field);
    expect((refusal as DeliveryPayloadError).message).toMatch(message);
  });
});
