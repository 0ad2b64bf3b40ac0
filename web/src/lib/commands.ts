// Command results (POST /commands, GET /commands/{id}, the WebSocket's command frames).
export interface CommandResult {
  id: string;
  status: 'pending' | 'executing' | 'ok' | 'failed' | 'expired' | 'rejected' | string;
  error?: string;
  done_ts?: number;
}

/** commandOutcome says in words how a command ended (or that it still runs). */
export function commandOutcome(r: CommandResult): string {
  switch (r.status) {
    case 'ok':
      return 'ok — written to the device';
    case 'pending':
    case 'executing':
      return `${r.status} — no outcome yet (command ${r.id})`;
    default:
      return r.error ? `${r.status}: ${r.error}` : r.status;
  }
}

/** final tells whether a status is an outcome. */
export function final(status: string): boolean {
  return status !== 'pending' && status !== 'executing';
}

/**
 * follow asks for a command's result (get) every intervalMs until it is final
 * or attempts run out, reporting each new text; it stops when signal aborts.
 */
export async function follow(
  get: () => Promise<CommandResult>,
  report: (text: string, done: boolean) => void,
  signal: AbortSignal,
  intervalMs = 1000,
  attempts = 30,
): Promise<void> {
  for (let i = 0; i < attempts && !signal.aborted; i++) {
    await new Promise((r) => setTimeout(r, intervalMs));
    if (signal.aborted) return;
    try {
      const r = await get();
      if (final(r.status)) {
        report(commandOutcome(r), true);
        return;
      }
    } catch {
      // the gateway did not answer this time: ask again
    }
  }
  if (!signal.aborted) report('no outcome yet — see GET /commands or the audit log', true);
}
