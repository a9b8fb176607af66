/** What replaces a query value (and a token-shaped piece of a path) in logs. */
export const REDACTED = '[redacted]';

const MAX_LOGGED_PARAMETERS = 20;
// A parameter name is kept only when it looks like one of ours: short, plain, not token-shaped.
const LOGGABLE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,39}$/;
// Operator tokens (libs/api-tokens token-format): a client may still put one in a path by mistake.
const TOKEN_IN_PATH = /rks_[A-Za-z0-9_-]+/g;

/**
 * A request URL as it may be logged: the path, and of the query only the parameter names.
 * Query values are never logged: clients put credentials there (`?access_token=rks_…`), and a
 * value may carry anything the caller typed. `/v1/audit?after=5&access_token=rks_x` becomes
 * `/v1/audit?after=[redacted]&access_token=[redacted]`.
 */
export function redactUrl(url: string): string {
  const queryStart = url.indexOf('?');
  const path = (queryStart === -1 ? url : url.slice(0, queryStart)).replace(TOKEN_IN_PATH, `rks_${REDACTED}`);
  if (queryStart === -1) {
    return path;
  }
  const pairs = url.slice(queryStart + 1).split('&').filter((pair) => pair.length > 0);
  const shown = pairs.slice(0, MAX_LOGGED_PARAMETERS).map((pair) => {
    const equals = pair.indexOf('=');
    const name = equals === -1 ? pair : pair.slice(0, equals);
    return LOGGABLE_NAME.test(name) && !name.startsWith('rks_') ? `${name}=${REDACTED}` : REDACTED;
  });
  if (pairs.length > MAX_LOGGED_PARAMETERS) {
    shown.push(`…${pairs.length - MAX_LOGGED_PARAMETERS}-more`);
  }
  return `${path}?${shown.join('&')}`;
}
