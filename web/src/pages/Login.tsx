import { useState } from 'preact/hooks';
import type { TokenPair } from '../lib/session';
import { problemText, timeoutMs, withTimeout } from '../api/client';

/** Login asks for user and password and hands the token pair to onLogin. */
export function Login({ onLogin, notice, baseUrl }: { onLogin: (p: TokenPair) => void; notice?: string; baseUrl: string }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  return (
    <div class="login">
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError('');
          try {
            const res = await withTimeout(fetch, timeoutMs)(baseUrl + '/auth/login', {
              method: 'POST',
              headers: { 'Content-Type': 'application/json' },
              body: JSON.stringify({ user, password }),
            });
            const body: unknown = await res.json().catch(() => null);
            if (!res.ok) {
              setError(res.status === 401 ? 'Wrong user name or password.' : problemText(body, res.status));
              return;
            }
            onLogin(body as TokenPair);
          } catch (err) {
            setError(problemText(err));
          } finally {
            setBusy(false);
          }
        }}
      >
        <h1>VoltageEMS</h1>
        {notice && (
          <div class="notice" data-testid="login-notice">
            {notice}
          </div>
        )}
        <label>
          User
          <input id="user" name="user" autoComplete="username" value={user} onInput={(e) => setUser((e.target as HTMLInputElement).value)} required autoFocus />
        </label>
        <label>
          Password
          <input
            id="password"
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
            required
          />
        </label>
        {error && (
          <div class="error" role="alert">
            {error}
          </div>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </div>
  );
}
