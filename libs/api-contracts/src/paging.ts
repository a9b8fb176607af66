/**
 * The paging contract of the operator API's list endpoints (GET /v1/audit, GET /v1/machines), kept
 * in one place for the control plane (validation, OpenAPI) and the CLI (`--limit`, `--after`):
 *
 *   - `limit`: how many items a page holds at most, a whole number from MIN_PAGE_SIZE to
 *     MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE when absent;
 *   - `after`: a keyset cursor, the sort key of the last item of the previous page (the audit
 *     sequence number, a machine's serial). Keyset paging (not offsets) so a page stays right while
 *     records are appended and machines imported between two requests.
 *
 * A page as full as `limit` may have a next one; a shorter page is the last (see nextPageAfter).
 */

/** Fewest items a page may be asked for. */
export const MIN_PAGE_SIZE = 1;
/** Most items one page may hold: bounds the rows one request reads and the bytes it returns. */
export const MAX_PAGE_SIZE = 1000;
/** Page size when `limit` is absent. */
export const DEFAULT_PAGE_SIZE = 100;

/** Largest numeric cursor (an audit sequence number): what a JSON number carries exactly. */
export const MAX_SEQUENCE_CURSOR = Number.MAX_SAFE_INTEGER;
/** Longest text cursor (a machine serial, 1-128 characters in an inventory). */
export const MAX_TEXT_CURSOR_LENGTH = 128;

/**
 * The one parsing rule for a whole-number paging value written as text (a query string, a CLI
 * option): decimal digits only — no sign, exponent, fraction or hex — and within [min, max].
 * Undefined when the text breaks the rule.
 */
export function parseWholeNumber(text: string, min: number, max: number): number | undefined {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) {
    return undefined;
  }
  const value = Number(trimmed);
  return Number.isSafeInteger(value) && value >= min && value <= max ? value : undefined;
}

/**
 * The `after` that reads the page following `page`, or undefined when `page` is the last one
 * (shorter than the `limit` it was asked with).
 */
export function nextPageAfter<T, C>(page: readonly T[], limit: number, cursorOf: (last: T) => C): C | undefined {
  return page.length > 0 && page.length >= limit ? cursorOf(page[page.length - 1]!) : undefined;
}
