import { useState } from 'preact/hooks';
import { unwrap, useLoad, useSite } from '../ui/hooks';
import { Confirm, Status } from '../ui/parts';
import { formatTime } from '../lib/points';
import type { Role } from '../lib/roles';

const roles: Role[] = ['viewer', 'operator', 'engineer', 'admin'];

type Dialog = { kind: 'create' } | { kind: 'edit'; name: string; role: Role } | { kind: 'delete'; name: string };

/** Users (admin): create, change role or password, delete. */
export function Users() {
  const site = useSite();
  const users = useLoad(() => unwrap(site.api.GET('/users')), [site.api]);
  const [dialog, setDialog] = useState<Dialog | null>(null);
  const [note, setNote] = useState('');
  return (
    <div class="page">
      <h2>Users</h2>
      {note && <div class="notice">{note}</div>}
      <p>
        <button class="primary" onClick={() => setDialog({ kind: 'create' })}>
          New user…
        </button>
      </p>
      <Status of={users} empty={(d) => !d.users?.length} emptyText="No users.">
        {(d) => (
          <table class="grid" data-testid="users">
            <thead>
              <tr>
                <th>User</th>
                <th>Role</th>
                <th>Created</th>
                <th>Changed</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {(d.users ?? []).map((u) => (
                <tr key={u.name}>
                  <td>{u.name}</td>
                  <td>{u.role}</td>
                  <td>{formatTime(u.created)}</td>
                  <td>{formatTime(u.updated)}</td>
                  <td class="actions">
                    <button onClick={() => setDialog({ kind: 'edit', name: u.name, role: u.role })}>Edit…</button>
                    {u.name !== site.user && <button onClick={() => setDialog({ kind: 'delete', name: u.name })}>Delete…</button>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Status>
      {dialog && (
        <UserDialog
          d={dialog}
          onClose={(r) => {
            setDialog(null);
            if (r) {
              setNote(r);
              users.reload();
            }
          }}
        />
      )}
    </div>
  );
}

function UserDialog({ d, onClose }: { d: Dialog; onClose: (r?: string) => void }) {
  const site = useSite();
  const [name, setName] = useState(d.kind === 'create' ? '' : d.name);
  const [role, setRole] = useState<Role>(d.kind === 'edit' ? d.role : 'viewer');
  const [password, setPassword] = useState('');
  if (d.kind === 'delete') {
    return (
      <Confirm
        title={`Delete user ${d.name}`}
        confirmText="Delete"
        onClose={onClose}
        run={async () => {
          await unwrap(site.api.DELETE('/users/{name}', { params: { path: { name: d.name } } }));
          return `Deleted ${d.name}.`;
        }}
      >
        <p>Every session of {d.name} ends.</p>
      </Confirm>
    );
  }
  return (
    <Confirm
      title={d.kind === 'create' ? 'New user' : `Edit ${d.name}`}
      confirmText={d.kind === 'create' ? 'Create' : 'Save'}
      onClose={onClose}
      run={async () => {
        if (d.kind === 'create') {
          await unwrap(site.api.POST('/users', { body: { name, role, password } }));
          return `Created ${name} (${role}).`;
        }
        await unwrap(
          site.api.PATCH('/users/{name}', { params: { path: { name: d.name } }, body: { role, ...(password ? { password } : {}) } }),
        );
        return `Changed ${d.name}: every older session of the user has ended.`;
      }}
    >
      {d.kind === 'create' && (
        <label>
          Name <input name="name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} required />
        </label>
      )}
      <label>
        Role{' '}
        <select name="role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as Role)}>
          {roles.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </select>
      </label>
      <label>
        {d.kind === 'create' ? 'Password' : 'New password (empty: unchanged)'}{' '}
        <input name="password" type="password" autoComplete="new-password" value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} required={d.kind === 'create'} />
      </label>
    </Confirm>
  );
}
