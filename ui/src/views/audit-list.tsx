import type { AuditListOrder, AuditRecordView } from '@rackseal/api-contracts';
import { useState } from 'preact/hooks';
import { api } from '../api';
import { instant } from '../format';
import { href } from '../router';
import { useApi } from '../use-api';

/** Rows per page. */
const PAGE_SIZE = 50;

/** The filters GET /v1/audit takes, as the URL carries them (instants as the API reads them: RFC 3339 with an offset). */
const FILTERS = ['action', 'actor', 'subject', 'since', 'until'] as const;
type Filter = (typeof FILTERS)[number];

/**
 * The audit records, newest first unless asked otherwise, filtered by action, actor, subject and
 * time, paged by id (GET /v1/audit?order=newest&before=<last id>, or ?after=<last id> oldest first).
 */
export function AuditList({ query, onError }: { query: URLSearchParams; onError: (error: unknown) => void }) {
  const filters = Object.fromEntries(FILTERS.map((f) => [f, query.get(f) ?? ''])) as Record<Filter, string>;
  const order: AuditListOrder = query.get('order') === 'oldest' ? 'oldest' : 'newest';
  // The page's cursor: records before it newest first, after it oldest first.
  const cursorName = order === 'newest' ? 'before' : 'after';
  const cursor = query.get(cursorName) ?? '';
  const params = new URLSearchParams({ limit: String(PAGE_SIZE), order });
  for (const [key, value] of [...Object.entries(filters), [cursorName, cursor] as const]) {
    if (value !== '') {
      params.set(key, value);
    }
  }
  const keep = { ...filters, order: order === 'oldest' ? 'oldest' : undefined };
  const loaded = useApi(() => api<AuditRecordView[]>('GET', `/v1/audit?${params.toString()}`), params.toString(), onError);
  const described = FILTERS.filter((f) => filters[f] !== '').map((f) => `, ${f} ${filters[f]}`).join('');

  return (
    <>
      <h1>Audit log</h1>
      <p class="help">
        Every decision the control plane made, in the order it was recorded. Open a record to see all its fields and to verify, in this browser, that it is
        in the log's signed Merkle tree.
      </p>
      <AuditFilters key={[...FILTERS.map((f) => filters[f]), order].join('\n')} filters={filters} order={order} />
      {loaded.kind === 'loading' && <p>Loading…</p>}
      {loaded.kind === 'error' && <p role="alert" class="error">Could not load audit records: {loaded.message}</p>}
      {loaded.kind === 'ok' && (
        <>
          <table class="audit">
            <caption>
              {loaded.value.length === 0 ? 'No audit records match' : `Audit records, ${order} first${cursor === '' ? '' : `, ${cursorName} id ${cursor}`}`}
              {described}
            </caption>
            <thead>
              <tr>
                <th scope="col">Seq</th>
                <th scope="col">Recorded</th>
                <th scope="col">Actor</th>
                <th scope="col">Action</th>
                <th scope="col">Subject</th>
                <th scope="col">Outcome</th>
              </tr>
            </thead>
            <tbody>
              {loaded.value.map((r) => (
                <tr key={r.id}>
                  <th scope="row">
                    <a href={href(`/audit/${r.id}`)} aria-label={`Record ${r.seq ?? `id ${r.id} (pending)`}`}>
                      {r.seq ?? 'pending'}
                    </a>
                  </th>
                  <td class="when">{instant(r.recordedAt)}</td>
                  <td>{r.actor}</td>
                  <td>{r.action}</td>
                  <td>{r.subject === '' ? '—' : r.subject}</td>
                  <td>{r.outcome}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <nav aria-label="Pages" class="pages">
            {cursor !== '' && <a href={href('/audit', keep)}>First page</a>}
            {loaded.value.length === PAGE_SIZE && <a href={href('/audit', { ...keep, [cursorName]: String(loaded.value[loaded.value.length - 1]?.id) })}>Next page</a>}
          </nav>
        </>
      )}
    </>
  );
}

/** `2026-03-01T10:00` from a datetime-local field, read as UTC (the dashboard shows every time in UTC). */
function utcInstant(local: string): string {
  return local === '' ? '' : `${local}Z`;
}

/** The URL's instant back into a datetime-local field (only what this form wrote: `…T10:00Z`, `…T10:00:05Z`). */
function localField(instant: string): string {
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?Z$/.test(instant) ? instant.slice(0, -1) : '';
}

/** The filter form: its fields are the user's until submitted, and start again from the URL when it changes (keyed by the filters). */
function AuditFilters({ filters, order }: { filters: Record<Filter, string>; order: AuditListOrder }) {
  const [inputs, setInputs] = useState({ ...filters, since: localField(filters.since), until: localField(filters.until), order });
  const field = (name: Filter, label: string, type = 'text', placeholder?: string) => (
    <>
      <label for={`audit-${name}`}>{label}</label>
      <input
        id={`audit-${name}`}
        name={name}
        type={type}
        step={type === 'datetime-local' ? 1 : undefined}
        placeholder={placeholder}
        value={inputs[name]}
        onInput={(event) => {
          const value = (event.target as HTMLInputElement).value;
          setInputs((current) => ({ ...current, [name]: value }));
        }}
      />
    </>
  );

  function filter(event: Event): void {
    event.preventDefault();
    window.location.hash = href('/audit', {
      action: inputs.action.trim(),
      actor: inputs.actor.trim(),
      subject: inputs.subject.trim(),
      since: utcInstant(inputs.since),
      until: utcInstant(inputs.until),
      order: inputs.order === 'oldest' ? 'oldest' : undefined,
    }).slice(1);
  }

  return (
    <form class="filters" onSubmit={filter} aria-label="Filter audit records">
      {field('action', 'Action', 'text', 'machine.state-changed')}
      {field('actor', 'Actor', 'text', 'token:3')}
      {field('subject', 'Subject', 'text', 'machine:SN-1')}
      {field('since', 'From (UTC)', 'datetime-local')}
      {field('until', 'Before (UTC)', 'datetime-local')}
      <label for="audit-order">Order</label>
      <select id="audit-order" name="order" value={inputs.order} onChange={(event) => setInputs((current) => ({ ...current, order: (event.target as HTMLSelectElement).value as AuditListOrder }))}>
        <option value="newest">newest first</option>
        <option value="oldest">oldest first</option>
      </select>
      <button type="submit">Filter</button>
    </form>
  );
}
