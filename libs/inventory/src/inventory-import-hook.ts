import type { EntityManager } from 'typeorm';

/**
 * What else an import that landed machines decides, in its transaction: libs/deliveries plans the
 * pre-wraps of `disk` keys for the imported machines (issue 14 item 6) — rows and their outbox jobs
 * only, never a wrap: an import of 10,000 rows must not do 10,000 RSA operations in one request.
 * Declared here, implemented there (libs/deliveries depends on this library's neighbours, not the
 * other way round), optional: a process without deliveries imports without it.
 */
export abstract class InventoryImportHook {
  /** Called once per import that landed rows (not a dry run, not a refused one), after the landing, before its audit record. */
  abstract imported(event: { importId: string; actor: string }, manager: EntityManager): Promise<void>;
}
