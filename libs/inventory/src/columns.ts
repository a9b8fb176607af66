/** The CSV columns an inventory file may have (docs/architecture.md §4.2), by header name. */
export const INVENTORY_COLUMNS = ['serial', 'asset_tag', 'hostname', 'group', 'ek_cert', 'ek_pub_hash', 'ek_intermediates'] as const;
export type InventoryColumn = (typeof INVENTORY_COLUMNS)[number];

/** Where each known column sits in the file; absent columns are undefined. */
export type ColumnMap = { readonly count: number } & { readonly [K in InventoryColumn]?: number };

/** At most this many header problems are listed; the rest are counted ("and K more"), so an error stays small. */
export const MAX_LISTED_HEADER_PROBLEMS = 20;

/** The first `max` items, then "and K more …" when there were more: error bodies stay bounded whatever the input. */
export function listAtMost(items: readonly string[], max: number, what = 'problems'): string[] {
  return items.length <= max ? [...items] : [...items.slice(0, max), `and ${items.length - max} more ${what}`];
}

/** The header row is unusable: its problems (at most MAX_LISTED_HEADER_PROBLEMS listed), in one message. */
export class InventoryHeaderError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    const listed = listAtMost(problems, MAX_LISTED_HEADER_PROBLEMS);
    super(`the CSV header is not usable: ${listed.join('; ')}`);
    this.name = 'InventoryHeaderError';
    this.problems = listed;
  }
}

/**
 * Reads the header row: names are matched case-insensitively after trimming. `serial` and at least
 * one of `ek_cert` / `ek_pub_hash` are required; `asset_tag`, `hostname`, `group` and
 * `ek_intermediates` are optional. Unknown, empty and repeated names are refused — a misspelt column
 * must not be silently dropped.
 */
export function parseHeader(fields: readonly string[]): ColumnMap {
  const problems: string[] = [];
  const map: { -readonly [K in InventoryColumn]?: number } = {};
  fields.forEach((raw, index) => {
    const name = raw.trim().toLowerCase();
    if (name === '') {
      problems.push(`column ${index + 1} has no name`);
    } else if (!(INVENTORY_COLUMNS as readonly string[]).includes(name)) {
      problems.push(`unknown column ${JSON.stringify(raw.slice(0, 64))} (known: ${INVENTORY_COLUMNS.join(', ')})`);
    } else if (map[name as InventoryColumn] !== undefined) {
      problems.push(`column ${JSON.stringify(name)} appears twice`);
    } else {
      map[name as InventoryColumn] = index;
    }
  });
  if (map.serial === undefined) {
    problems.push('missing column "serial"');
  }
  if (map.ek_cert === undefined && map.ek_pub_hash === undefined) {
    problems.push('missing column "ek_cert" or "ek_pub_hash" (one is required)');
  }
  if (problems.length > 0) {
    throw new InventoryHeaderError(problems);
  }
  return { ...map, count: fields.length };
}
