import { useState } from 'preact/hooks';
import { unwrap, useLoad, useSite } from '../ui/hooks';
import { Status } from '../ui/parts';
import { formatTime } from '../lib/points';

/** The audit log (admin), newest first, a page at a time. */
export function Audit() {
  const site = useSite();
  const [before, setBefore] = useState<string[]>([]); // cursors of the pages seen
  const cursor = before[before.length - 1];
  const page = useLoad(
    () => unwrap(site.api.GET('/audit', { params: { query: { limit: 100, ...(cursor ? { before: cursor } : {}) } } })),
    [site.api, cursor],
  );
  return (
    <div class="page">
      <h2>Audit log</h2>
      <Status of={page} empty={(d) => !d.entries?.length} emptyText="No entries.">
        {(d) => (
          <>
            <table class="grid" data-testid="audit">
              <thead>
                <tr>
                  <th>Time</th>
                  <th>Action</th>
                  <th>User</th>
                  <th>Source</th>
                  <th>Details</th>
                </tr>
              </thead>
              <tbody>
                {(d.entries ?? []).map((e) => {
                  const { ts, action, user, source, ...rest } = e.fields ?? {};
                  return (
                    <tr key={e.id}>
                      <td>{formatTime(ts)}</td>
                      <td>{action}</td>
                      <td>{user}</td>
                      <td>{source}</td>
                      <td class="wrap">
                        {Object.entries(rest)
                          .map(([k, v]) => `${k}=${v}`)
                          .join(' ')}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
            <div class="pager">
              <button disabled={before.length === 0} onClick={() => setBefore(before.slice(0, -1))}>
                ← Newer
              </button>
              <button disabled={!d.next_before} onClick={() => d.next_before && setBefore([...before, d.next_before])}>
                Older →
              </button>
            </div>
          </>
        )}
      </Status>
    </div>
  );
}
