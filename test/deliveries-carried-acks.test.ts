/**
 * The poll that carries acks (POST /node/v1/deliveries/poll; docs/decisions.md, "One request per
 * delivery") on real PostgreSQL and Redis, through the control plane as a process: each carried ack
 * is decided as the ack route decides it — once, with the same refusals and audit records — and
 * answered in its place, before the poll reads and waits; a body that is not a list of acks is
 * refused as a whole; a revoked machine's request is refused with everything it carried.
 */
import { MAILBOX_MAX_CARRIED_ACKS, type MailboxPollResponse } from '@rackseal/node-api-contracts';
import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { useMailboxFleet } from './support/mailbox-fleet';
import { useSwtpms } from './support/swtpm';
import { openTestEnvelope } from './support/test-envelope-sealer';
import { pollUntil } from './support/wait';

jest.setTimeout(180_000);

interface DeliveryRow {
  id: string;
  machine_id: string;
  state: string;
  envelope: Buffer | null;
}

describe('the poll that carries acks', () => {
  const fixture = useSwtpms(1, { p256: true });
  const fleet = useMailboxFleet(fixture);
  const { fleetKey, machineId, startWorker, operator, pollCarrying, ack } = fleet;
  let ds: DataSource;

  beforeAll(() => ({ ds } = fleet.parts));

  async function readyDeliveries(name: string): Promise<{ rsa: DeliveryRow; p256: DeliveryRow }> {
    const created = await operator('post', '/v1/secrets').send({ name, kind: 'opaque', target: { group: 'workers' }, binding: 'pcr-sealed', value: randomBytes(24).toString('base64') });
    expect([created.status, created.body.code]).toEqual([201, undefined]);
    if (fleet.runningWorkers.length === 0) {
      await startWorker();
    }
    const rows = await pollUntil(() => deliveriesOf(name), (r) => r.length === 2 && r.every((d) => d.state === 'ready'), 60_000);
    expect(rows.map((r) => r.state)).toEqual(['ready', 'ready']);
    return { rsa: rows.find((d) => d.machine_id === machineId['SN-RSA'])!, p256: rows.find((d) => d.machine_id === machineId['SN-P256'])! };
  }

  async function deliveriesOf(name: string): Promise<DeliveryRow[]> {
    return (await ds.query(`SELECT d.id, d.machine_id, d.state, d.envelope FROM deliveries d JOIN secrets s ON s.id = d.secret_id WHERE s.name = $1 ORDER BY d.machine_id`, [name])) as DeliveryRow[];
  }

  const stateOf = async (id: string) => ((await ds.query('SELECT state FROM deliveries WHERE id = $1', [id])) as { state: string }[])[0]!.state;
  const auditCount = async (action: string, about = '') =>
    ((await ds.query(`SELECT count(*)::int AS n FROM audit_log WHERE action = $1 AND details::text LIKE $2`, [action, `%${about}%`])) as { n: number }[])[0]!.n;
  const proofOf = (serial: string, d: DeliveryRow) => openTestEnvelope(fleetKey, machineId[serial]!, d.id, 1, d.envelope!).ackProof.toString('base64');

  it('an ack carried by the next poll is taken once before that poll waits; the waiting poll answers it with the next delivery; carried again (or twice in one poll) it is answered alreadyAcked and nothing changes', async () => {
    const { rsa } = await readyDeliveries('carried-first');
    const first = await pollCarrying('SN-RSA', { acks: [] });
    expect([first.status, (first.json as unknown as MailboxPollResponse).deliveries.map((d) => d.id), first.json.acks]).toEqual([200, [rsa.id], []]);

    // The agent's next poll carries the ack and waits for more.
    let answered = false;
    const waiting = pollCarrying('SN-RSA', { acks: [{ id: rsa.id, proof: proofOf('SN-RSA', rsa) }] }, 30).finally(() => (answered = true));
    expect(await pollUntil(() => stateOf(rsa.id), (s) => s === 'acked', 20_000)).toBe('acked');
    expect(answered).toBe(false);
    expect(await auditCount('delivery.acked', rsa.id)).toBe(1);

    // The next delivery wakes it: the ack's answer and the new delivery in one answer.
    const next = await readyDeliveries('carried-second');
    const woken = await waiting;
    const body = woken.json as unknown as MailboxPollResponse;
    expect([woken.status, body.deliveries.map((d) => d.id)]).toEqual([200, [next.rsa.id]]);
    expect(body.acks).toEqual([{ deliveryId: rsa.id, state: 'acked', alreadyAcked: false, ackedAt: expect.any(String) }]);
    const ackedAt = (body.acks[0] as { ackedAt: string }).ackedAt;

    // Carried again (a poll whose answer was lost): alreadyAcked, the same ackedAt, no record; the ack route agrees.
    const again = await pollCarrying('SN-RSA', { acks: [{ id: rsa.id, proof: proofOf('SN-RSA', rsa) }] });
    expect([again.status, again.json.acks, (again.json as unknown as MailboxPollResponse).deliveries.map((d) => d.id)]).toEqual([
      200,
      [{ deliveryId: rsa.id, state: 'acked', alreadyAcked: true, ackedAt }],
      [next.rsa.id],
    ]);
    expect((await ack('SN-RSA', rsa.id, Buffer.from(proofOf('SN-RSA', rsa), 'base64'))).json).toMatchObject({ alreadyAcked: true, ackedAt });
    expect(await auditCount('delivery.acked', rsa.id)).toBe(1);

    // The same ack twice in one poll: acked by the first, alreadyAcked to the second; the poll then finds nothing ready.
    const twice = await pollCarrying('SN-RSA', { acks: [0, 1].map(() => ({ id: next.rsa.id, proof: proofOf('SN-RSA', next.rsa) })) });
    expect(twice.status).toBe(200);
    const [one, two] = twice.json.acks as { alreadyAcked: boolean; ackedAt: string }[];
    expect([one!.alreadyAcked, two!.alreadyAcked, two!.ackedAt]).toEqual([false, true, one!.ackedAt]);
    expect((twice.json as unknown as MailboxPollResponse).deliveries).toEqual([]);
    expect([await stateOf(next.rsa.id), await auditCount('delivery.acked', next.rsa.id)]).toEqual(['acked', 1]);
  });

  it('carried acks that are refused (a wrong proof, another machine\'s delivery, an unknown or missing id, a proof not of 32 bytes) are answered in their place and audited one record each; the others are taken and the poll still answers', async () => {
    const { rsa, p256 } = await readyDeliveries('carried-refused');
    const other = await readyDeliveries('carried-taken');
    const refusedBefore = await auditCount('delivery.ack-refused');
    const answer = await pollCarrying('SN-RSA', {
      acks: [
        { id: rsa.id, proof: randomBytes(32).toString('base64') },
        { id: p256.id, proof: proofOf('SN-P256', p256) },
        { id: '00000000-0000-4000-8000-000000000000', proof: proofOf('SN-RSA', rsa) },
        { proof: proofOf('SN-RSA', rsa) },
        { id: rsa.id, proof: 'AAAA' },
        { id: other.rsa.id, proof: proofOf('SN-RSA', other.rsa) },
      ],
    });
    expect(answer.status).toBe(200);
    const acks = answer.json.acks as Record<string, unknown>[];
    expect(acks.map((a) => (a.refused as { code?: string } | undefined)?.code ?? a.state)).toEqual([
      'delivery.bad-proof',
      'delivery.not-found',
      'delivery.not-found',
      'delivery.not-found',
      'delivery.invalid',
      'acked',
    ]);
    expect(acks[5]).toMatchObject({ deliveryId: other.rsa.id, alreadyAcked: false });
    // The poll answered what is still ready for this machine: the delivery whose ack was refused.
    expect((answer.json as unknown as MailboxPollResponse).deliveries.map((d) => d.id)).toEqual([rsa.id]);
    expect(await auditCount('delivery.ack-refused')).toBe(refusedBefore + 5);
    const [foreign] = (await ds.query(`SELECT details FROM audit_log WHERE action = 'delivery.ack-refused' AND details->>'ownerId' = $1`, [machineId['SN-P256']])) as { details: Record<string, unknown> }[];
    expect(foreign!.details).toMatchObject({ code: 'delivery.not-found', machineId: machineId['SN-RSA'], deliveryId: p256.id });
    const bad = (await ds.query(`SELECT details FROM audit_log WHERE action = 'delivery.ack-refused' AND details->>'code' = 'delivery.bad-proof' AND details->>'deliveryId' = $1`, [rsa.id])) as unknown[];
    expect(bad).toHaveLength(1);
    expect([await stateOf(rsa.id), await stateOf(p256.id), await stateOf(other.rsa.id)]).toEqual(['ready', 'ready', 'acked']);
    expect([await auditCount('delivery.acked', rsa.id), await auditCount('delivery.acked', p256.id), await auditCount('delivery.acked', other.rsa.id)]).toEqual([0, 0, 1]);
    // The refused delivery is still taken with its right proof, carried by the next poll.
    const right = await pollCarrying('SN-RSA', { acks: [{ id: rsa.id, proof: proofOf('SN-RSA', rsa) }] });
    expect([right.status, right.json.acks]).toEqual([200, [expect.objectContaining({ deliveryId: rsa.id, alreadyAcked: false })]]);
  });

  it('a body that is not { acks: [{ id, proof }] } of at most 100 is refused as a whole (400 delivery.invalid, audited once each), a wait out of range or a JSON array before any ack; nothing is acked', async () => {
    const { p256 } = await readyDeliveries('carried-malformed');
    const good = { id: p256.id, proof: proofOf('SN-P256', p256) };
    const refusedBefore = await auditCount('delivery.ack-refused');
    for (const body of [{ acks: good }, { acks: [good], more: true }, { acks: Array.from({ length: MAILBOX_MAX_CARRIED_ACKS + 1 }, () => good) }, { acks: [good, null] }, {}]) {
      const refused = await pollCarrying('SN-P256', body);
      expect([JSON.stringify(body).slice(0, 40), refused.status, refused.json.code]).toEqual([JSON.stringify(body).slice(0, 40), 400, 'delivery.invalid']);
    }
    // Refused before the mailbox sees them (not audited, as for every route): a wait out of range, a JSON body that is not an object.
    const badWait = await pollCarrying('SN-P256', { acks: [good] }, 31);
    expect([badWait.status, badWait.json.code]).toEqual([400, 'delivery.invalid']);
    const array = await pollCarrying('SN-P256', [good]);
    expect([array.status, array.json.code]).toEqual([400, 'request.invalid']);
    expect(await auditCount('delivery.ack-refused')).toBe(refusedBefore + 5);
    // This machine had no refusal before: the five records are these, each naming no delivery.
    const records = (await ds.query(`SELECT details FROM audit_log WHERE action = 'delivery.ack-refused' AND details->>'machineId' = $1`, [machineId['SN-P256']])) as { details: Record<string, unknown> }[];
    expect(records.map((r) => [r.details.code, r.details.deliveryId])).toEqual(Array.from({ length: 5 }, () => ['delivery.invalid', null]));
    expect([await stateOf(p256.id), await auditCount('delivery.acked', p256.id)]).toEqual(['ready', 0]);
    const taken = await pollCarrying('SN-P256', { acks: [good] });
    expect([taken.status, taken.json.acks]).toEqual([200, [expect.objectContaining({ deliveryId: p256.id, alreadyAcked: false })]]);
  });

  it("a revoked machine's poll is refused (401) with the acks it carried: nothing acked, nothing answered", async () => {
    const { p256 } = await readyDeliveries('carried-revoked');
    const revoked = await operator('post', `/v1/machines/${machineId['SN-P256']}/revoke`).send({ reason: 'decommissioned' });
    expect(revoked.status).toBe(200);
    const refused = await pollCarrying('SN-P256', { acks: [{ id: p256.id, proof: proofOf('SN-P256', p256) }] }, 30);
    expect([refused.status, refused.json.acks, refused.json.deliveries]).toEqual([401, undefined, undefined]);
    expect(refused.json.code).toMatch(/^node\.(unknown-credential|machine-not-attested)$/);
    expect(await auditCount('delivery.acked', p256.id)).toBe(0);
    expect(await stateOf(p256.id)).not.toBe('acked');
  });
});
