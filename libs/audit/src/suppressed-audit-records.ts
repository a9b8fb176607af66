import { Injectable } from '@nestjs/common';

/** Refusals of one action and kind that an AuditBudget left out of the log, counted since the process started. */
export interface SuppressedCount {
  readonly action: string;
  readonly kind: string;
  readonly count: number;
}

/**
 * The process's count of refusals left out of the audit log by an AuditBudget, per audited action
 * (`attestation.refused`, `node.request-refused`) and kind (code or reason): what /metrics exposes,
 * so a flood shows the moment it starts, before the next record carries its count.
 */
@Injectable()
export class SuppressedAuditRecords {
  readonly #counts = new Map<string, { action: string; kind: string; count: number }>();

  add(action: string, kind: string): void {
    const key = `${action}\u0000${kind}`;
    const entry = this.#counts.get(key);
    if (entry === undefined) {
      this.#counts.set(key, { action, kind, count: 1 });
    } else {
      entry.count += 1;
    }
  }

  /** Every action and kind counted so far, ordered by action then kind. */
  counts(): SuppressedCount[] {
    return [...this.#counts.values()].map((e) => ({ ...e })).sort((a, b) => a.action.localeCompare(b.action) || a.kind.localeCompare(b.kind));
  }
}
