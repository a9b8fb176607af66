import type { AuditInclusionProofView, AuditPublicKeyView, AuditRecordView } from '@rackseal/api-contracts';
import { useState } from 'preact/hooks';
import { api } from '../api';
import { type InclusionVerdict, verifyRecordInclusion } from '../audit-proof';
import { instant } from '../format';
import { href } from '../router';
import { useApi } from '../use-api';

/** The record of append id `id`: the first record after id − 1 (GET /v1/audit pages by id). */
async function loadRecord(id: number): Promise<AuditRecordView | null> {
  const [record] = await api<AuditRecordView[]>('GET', `/v1/audit?after=${id - 1}&limit=1`);
  return record?.id === id ? record : null;
}

/** One audit record, every field, and "Verify inclusion". */
export function AuditRecordPage({ id, onError }: { id: number; onError: (error: unknown) => void }) {
  const loaded = useApi(() => loadRecord(id), String(id), onError);
  return (
    <>
      <p>
        <a href={href('/audit')}>← Audit log</a>
      </p>
      {loaded.kind === 'loading' && <p>Loading…</p>}
      {loaded.kind === 'error' && <p role="alert" class="error">Could not load the record: {loaded.message}</p>}
      {loaded.kind === 'ok' && loaded.value === null && <p role="alert" class="error">There is no audit record with id {id}.</p>}
      {loaded.kind === 'ok' && loaded.value !== null && <RecordDetail record={loaded.value} onError={onError} />}
    </>
  );
}

function RecordDetail({ record, onError }: { record: AuditRecordView; onError: (error: unknown) => void }) {
  return (
    <>
      <h1>Audit record {record.seq ?? `id ${record.id} (pending)`}</h1>
      <dl>
        <dt>Action</dt>
        <dd>{record.action}</dd>
        <dt>Outcome</dt>
        <dd>{record.outcome}</dd>
        <dt>Actor</dt>
        <dd>{record.actor}</dd>
        <dt>Subject</dt>
        <dd>{record.subject === '' ? '—' : record.subject}</dd>
        <dt>Recorded</dt>
        <dd>{instant(record.recordedAt)}</dd>
      </dl>
      <h2 id="record-json">The record as the API returns it</h2>
      {/* Text, never markup: Preact escapes it, whatever the details hold. */}
      <pre class="json" aria-labelledby="record-json" tabIndex={0}>
        {JSON.stringify(record, null, 2)}
      </pre>
      {record.seq === null ? (
        <p>This record is pending: the sequencer has not given it a place in the Merkle tree yet, so there is no inclusion to verify.</p>
      ) : (
        <VerifyInclusion record={record} seq={record.seq} onError={onError} />
      )}
    </>
  );
}

type Verification =
  | { readonly kind: 'idle' }
  | { readonly kind: 'running' }
  | { readonly kind: 'done'; readonly verdict: InclusionVerdict; readonly vkey: string; readonly pinned: boolean }
  | { readonly kind: 'error'; readonly message: string };

/**
 * Fetches the inclusion proof and the latest signed checkpoint for the record shown, and the log's
 * keys, and checks them here (ui/src/audit-proof.ts) against the record as displayed. The key is
 * the one the operator pins, else the one the control plane serves — which proves only that the
 * server's answers agree with each other, so the key is shown for the operator to compare.
 */
function VerifyInclusion({ record, seq, onError }: { record: AuditRecordView; seq: number; onError: (error: unknown) => void }) {
  const [pinned, setPinned] = useState('');
  const [state, setState] = useState<Verification>({ kind: 'idle' });

  async function verify(event: Event): Promise<void> {
    event.preventDefault();
    setState({ kind: 'running' });
    try {
      const [answer, keys] = await Promise.all([
        api<AuditInclusionProofView>('GET', `/v1/audit/records/${seq}/proof`),
        pinned.trim() === '' ? api<AuditPublicKeyView[]>('GET', '/v1/audit/public-keys') : Promise.resolve([]),
      ]);
      const served = keys.find((k) => k.keyId === answer?.checkpoint?.keyId) ?? keys[0];
      const vkey = pinned.trim() !== '' ? pinned.trim() : (served?.verifierKey ?? '');
      // The record as displayed is the one verified: what the operator reads is what is proven.
      const verdict = await verifyRecordInclusion(seq, { ...answer, record }, vkey);
      setState({ kind: 'done', verdict, vkey, pinned: pinned.trim() !== '' });
    } catch (error) {
      setState({ kind: 'error', message: (error as Error).message });
      onError(error);
    }
  }

  return (
    <section aria-labelledby="verify-heading">
      <h2 id="verify-heading">Inclusion in the signed log</h2>
      <form class="filters" onSubmit={(event) => void verify(event)} aria-label="Verify inclusion">
        <label for="pinned-key">Pinned verifier key (optional)</label>
        <input
          id="pinned-key"
          name="pinned-key"
          size={60}
          placeholder="name+keyid+base64 from rackseal audit public-key"
          aria-describedby="pinned-help"
          value={pinned}
          onInput={(event) => setPinned((event.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={state.kind === 'running'}>
          Verify inclusion
        </button>
      </form>
      <p id="pinned-help" class="help">
        Checked in this browser with WebCrypto: the leaf hash is recomputed from the record above, the inclusion proof is walked to a root (RFC 9162
        §2.1.3.2), that root must be the one the latest checkpoint signs, and the checkpoint's Ed25519 signature must verify with the log's key. Without a
        pinned key the key comes from this control plane too, which proves only that its answers agree with each other: compare the key shown with the
        one you pinned with the CLI, or paste it here.
      </p>
      {state.kind === 'running' && <p role="status">Verifying…</p>}
      {state.kind === 'error' && (
        <p role="alert" class="error">
          Could not fetch the proof: {state.message}
        </p>
      )}
      {state.kind === 'done' && <VerdictReport {...state} seq={seq} />}
    </section>
  );
}

const MARKS = { passed: '✓ passed', failed: '✕ failed', skipped: '– not checked' } as const;

function VerdictReport({ verdict, vkey, pinned, seq }: { verdict: InclusionVerdict; vkey: string; pinned: boolean; seq: number }) {
  const failed = verdict.steps.find((s) => s.ok === false);
  return (
    <div class="verdict">
      <p role="status" class={verdict.verified ? 'verified' : 'failed'}>
        {verdict.verified
          ? `✓ Verified: record ${seq} is in the signed log of ${verdict.treeSize} records.`
          : `✕ Failed: ${failed?.title ?? 'verification'}: ${failed?.detail ?? 'not every step passed'}`}
      </p>
      <ol class="steps" aria-label="Verification steps">
        {verdict.steps.map((s) => (
          <li key={s.step}>
            <strong>{s.title}</strong>: {s.ok === true ? MARKS.passed : s.ok === false ? MARKS.failed : MARKS.skipped} — {s.detail}
          </li>
        ))}
      </ol>
      <dl class="hashes">
        <dt>Leaf hash (recomputed)</dt>
        <dd class="digest">{verdict.leafHash ?? '—'}</dd>
        <dt>Root from the proof</dt>
        <dd class="digest">{verdict.computedRoot ?? '—'}</dd>
        <dt>Root the checkpoint signs</dt>
        <dd class="digest">{verdict.checkpointRoot ?? '—'}</dd>
        <dt>Tree size</dt>
        <dd>{verdict.treeSize ?? '—'}</dd>
        <dt>Verifier key ({pinned ? 'pinned by you' : 'served by this control plane'})</dt>
        <dd class="digest">{vkey === '' ? 'none' : vkey}</dd>
        <dt>Key ID</dt>
        <dd class="digest">{verdict.keyId ?? '—'}</dd>
      </dl>
    </div>
  );
}
