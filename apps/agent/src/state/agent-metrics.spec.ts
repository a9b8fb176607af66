import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_METRICS_FILE, AgentMetricsRecorder, emptyAgentMetrics, loadAgentMetrics, recordAgentEvent } from './agent-metrics';

describe('agent-metrics.json', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackseal-agent-metrics-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('counts each event under its outcome and keeps the last of each kind', () => {
    let m = emptyAgentMetrics(new Date('2026-01-01T00:00:00Z'));
    m = recordAgentEvent(m, { type: 'attestation', at: '2026-01-01T00:01:00Z', outcome: 'attested' });
    m = recordAgentEvent(m, { type: 'attestation', at: '2026-01-01T00:02:00Z', outcome: 'unreachable' });
    m = recordAgentEvent(m, { type: 'delivery', at: '2026-01-01T00:03:00Z', outcome: 'delivered', secret: 'web-tls' });
    m = recordAgentEvent(m, { type: 'delivery', at: '2026-01-01T00:04:00Z', outcome: 'delivery-refused', secret: 'disk', code: 'delivery.no-install' });
    m = recordAgentEvent(m, { type: 'tpm-error', at: '2026-01-01T00:05:00Z', kind: 'device', message: 'x'.repeat(1000) });
    expect(m).toEqual({
      since: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:05:00Z',
      attestations: { attested: 1, refused: 0, unreachable: 1, failed: 0 },
      lastAttestedAt: '2026-01-01T00:01:00Z',
      deliveries: { delivered: 1, 'delivery-refused': 1, 'delivery-failed': 0, 'mailbox-invalid': 0 },
      lastDelivery: { at: '2026-01-01T00:04:00Z', outcome: 'delivery-refused', secret: 'disk', code: 'delivery.no-install' },
      lastDeliveredAt: '2026-01-01T00:03:00Z',
      tpmErrors: { tpm: 0, device: 1 },
      lastTpmError: { at: '2026-01-01T00:05:00Z', kind: 'device', message: 'x'.repeat(300) },
    });
  });

  it('a recorder writes every event in order and a later one (a restarted run) continues the counts', async () => {
    const first = new AgentMetricsRecorder(dir);
    await Promise.all([
      first.record({ type: 'attestation', at: '2026-01-01T00:01:00Z', outcome: 'attested' }),
      first.record({ type: 'tpm-error', at: '2026-01-01T00:02:00Z', kind: 'tpm', message: 'TPM_RC_POLICY_FAIL' }),
    ]);
    const second = new AgentMetricsRecorder(dir);
    await second.record({ type: 'attestation', at: '2026-01-01T00:03:00Z', outcome: 'attested' });
    const stored = await loadAgentMetrics(dir);
    expect(stored).toMatchObject({ since: '2026-01-01T00:01:00.000Z', attestations: { attested: 2 }, tpmErrors: { tpm: 1, device: 0 }, lastAttestedAt: '2026-01-01T00:03:00Z' });
    expect(JSON.parse(await readFile(join(dir, AGENT_METRICS_FILE), 'utf8'))).toEqual(stored);
  });

  it.each([
    ['not JSON', '{'],
    ['null', 'null'],
    ['a negative counter', JSON.stringify({ ...emptyAgentMetrics(new Date(0)), tpmErrors: { tpm: -1, device: 0 } })],
    ['a counter that is text', JSON.stringify({ ...emptyAgentMetrics(new Date(0)), attestations: { attested: '3' } })],
    ['no since', JSON.stringify({ attestations: {}, deliveries: {}, tpmErrors: {} })],
  ])('reads a file with %s as no figures, and a recorder starts again from zero', async (_label, text) => {
    await writeFile(join(dir, AGENT_METRICS_FILE), text, { mode: 0o600 });
    expect(await loadAgentMetrics(dir)).toBeUndefined();
    await new AgentMetricsRecorder(dir).record({ type: 'delivery', at: '2026-01-01T00:00:00Z', outcome: 'delivered' });
    expect((await loadAgentMetrics(dir))?.deliveries.delivered).toBe(1);
  });

  it('reads a missing file as no figures', async () => {
    expect(await loadAgentMetrics(dir)).toBeUndefined();
  });
});
