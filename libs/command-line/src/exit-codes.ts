/** Exit codes shared by every rackseal command (docs/architecture.md §5). */
export const EXIT = {
  /** Success, or the input is valid. */
  ok: 0,
  /** The input was checked and refused; the reason is on stderr. */
  invalid: 1,
  /** Bad usage or unreadable input. */
  usage: 2,
} as const;
