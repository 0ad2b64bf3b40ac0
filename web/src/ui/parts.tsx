import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { Loaded } from './hooks';

/** Status shows loading, an error with a retry, or an empty state, else the children. */
export function Status<T>(props: {
  of: Loaded<T>;
  empty?: (d: T) => boolean;
  emptyText?: string;
  children: (d: T) => ComponentChildren;
}) {
  const { of } = props;
  if (of.error && of.data === undefined) {
    return (
      <div class="error" role="alert">
        <span>{of.error}</span> <button onClick={of.reload}>Retry</button>
      </div>
    );
  }
  if (of.data === undefined) return <div class="loading">Loading…</div>;
  return (
    <>
      {of.error && (
        <div class="error" role="alert">
          <span>Showing older data: {of.error}</span> <button onClick={of.reload}>Retry</button>
        </div>
      )}
      {props.empty?.(of.data) ? <div class="empty">{props.emptyText ?? 'Nothing here.'}</div> : props.children(of.data)}
    </>
  );
}

/**
 * Confirm is a modal asking to confirm an action; run does it and returns its
 * result (handed to onClose) or throws (shown as an error in the modal).
 */
export function Confirm<R = string>(props: {
  title: string;
  children?: ComponentChildren;
  confirmText?: string;
  run: () => Promise<R>;
  onClose: (result?: R) => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  return (
    <div class="modal-back" role="dialog" aria-modal="true" aria-label={props.title}>
      <form
        class="modal"
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setError('');
          props
            .run()
            .then((r) => props.onClose(r))
            .catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)))
            .finally(() => setBusy(false));
        }}
      >
        <h3>{props.title}</h3>
        {props.children}
        {error && (
          <div class="error" role="alert">
            {error}
          </div>
        )}
        <div class="buttons">
          <button type="button" onClick={() => props.onClose()} disabled={busy}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy} data-testid="confirm">
            {busy ? 'Working…' : (props.confirmText ?? 'Confirm')}
          </button>
        </div>
      </form>
    </div>
  );
}

export function Quality({ q }: { q: string }) {
  return <span class={`quality ${q === 'good' ? 'q-good' : q === 'missing' ? 'q-missing' : 'q-bad'}`}>{q}</span>;
}

export function Severity({ s }: { s: string }) {
  return <span class={`sev sev-${s}`}>{s}</span>;
}
