/** At most this many messages in one error body; the rest are counted. */
export const MAX_ERROR_MESSAGES = 20;
/** Each message is cut at this many characters (a message may quote what the client sent). */
export const MAX_ERROR_MESSAGE_CHARS = 500;

/**
 * An error body's `message`, bounded whatever produced it: a CSV header of 150,000 unknown columns
 * or a body with thousands of invalid fields must not answer with megabytes of messages. The first
 * MAX_ERROR_MESSAGES stay, then one line says how many were left out.
 */
export function boundedMessage(message: unknown): string | string[] {
  if (!Array.isArray(message)) {
    return truncate(String(message));
  }
  const kept = message.slice(0, MAX_ERROR_MESSAGES).map((m) => truncate(String(m)));
  if (message.length > MAX_ERROR_MESSAGES) {
    kept.push(`… and ${message.length - MAX_ERROR_MESSAGES} more`);
  }
  return kept;
}

function truncate(text: string): string {
  return text.length <= MAX_ERROR_MESSAGE_CHARS ? text : `${text.slice(0, MAX_ERROR_MESSAGE_CHARS)}… (${text.length - MAX_ERROR_MESSAGE_CHARS} more characters)`;
}
