import type { OperatorSession } from '@rackseal/api-contracts';
import { useState } from 'preact/hooks';
import { api, ApiError } from '../api';

/**
 * Sign-in with an operator token. The token goes to POST /v1/session once and is kept nowhere in the
 * browser: the session cookie (HttpOnly) stands for it from then on.
 */
export function SignIn({ onSignedIn, notice }: { onSignedIn: (session: OperatorSession) => void; notice?: string }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const session = await api<OperatorSession>('POST', '/v1/session', { token: token.trim() });
      setToken('');
      onSignedIn(session);
    } catch (caught) {
      setError(caught instanceof ApiError && caught.status === 401 ? 'This token is not valid (unknown, mistyped or revoked).' : (caught as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main id="main" class="sign-in">
      <h1>rackseal fleet</h1>
      {notice !== undefined && <p role="status">{notice}</p>}
      <form onSubmit={(event) => void submit(event)}>
        <label for="token">Operator token</label>
        <input id="token" name="token" type="password" autocomplete="off" spellcheck={false} required value={token} onInput={(event) => setToken((event.target as HTMLInputElement).value)} aria-describedby="token-help" />
        <p id="token-help" class="help">
          A token from <code>rackseal token create</code>. What you can see and do follows its scopes.
        </p>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error !== undefined && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}
