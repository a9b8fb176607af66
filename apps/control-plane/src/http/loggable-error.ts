const MAX_CAUSES = 3;

/**
 * What of an unexpected error may be logged. A database error carries the query's parameters
 * (TypeORM `parameters`, the pg error's `detail` such as `Key (token_hash)=(\x…)`), and
 * PostgreSQL's message can quote a value (`value "…" is out of range`): a token hash or any other
 * secret-derived value would land in the log. So a driver error is logged by its SQLSTATE, the
 * names it reports (constraint, table, column), the SQL text (placeholders only) and its stack
 * frames, never its message, detail or parameters. Any other error keeps name, message and stack.
 */
export function loggableError(error: unknown, depth = 0): Record<string, unknown> {
  if (!(error instanceof Error)) {
    return { type: typeof error };
  }
  const fields = error as Error & { query?: unknown; driverError?: unknown; cause?: unknown; code?: unknown };
  const driverError = fields.driverError ?? (isPgError(error) ? error : undefined);
  const described: Record<string, unknown> =
    driverError === undefined
      ? { type: error.name, message: error.message, stack: error.stack }
      : {
          type: error.name,
          ...pgFields(driverError),
          ...(typeof fields.query === 'string' ? { query: fields.query } : {}),
          stack: stackFrames(error.stack),
        };
  if (fields.cause !== undefined && depth < MAX_CAUSES) {
    described.cause = loggableError(fields.cause, depth + 1);
  }
  return described;
}

/** A pg DatabaseError: a SQLSTATE (5 characters) plus the server's severity. */
function isPgError(error: Error): boolean {
  const { code, severity } = error as { code?: unknown; severity?: unknown };
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && typeof severity === 'string';
}

function pgFields(driverError: unknown): Record<string, unknown> {
  const e = driverError as Record<string, unknown>;
  const picked: Record<string, unknown> = {};
  // Identifiers and codes only; `message`, `detail`, `hint`, `where` and `parameters` can hold values.
  for (const key of ['code', 'severity', 'routine', 'schema', 'table', 'column', 'dataType', 'constraint']) {
    if (typeof e[key] === 'string') {
      picked[key] = e[key];
    }
  }
  return picked;
}

/** The `at …` lines of a stack, without the first line (which repeats the message). */
function stackFrames(stack: string | undefined): string | undefined {
  return stack
    ?.split('\n')
    .filter((line) => line.trimStart().startsWith('at '))
    .join('\n');
}
