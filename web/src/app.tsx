import { useEffect, useMemo, useState } from 'preact/hooks';
import { newApi, refresher } from './api/client';
import { Live, type ConnState } from './lib/live';
import { Session, type SessionState } from './lib/session';
import { can, type Role } from './lib/roles';
import { parseHash, type Route } from './lib/router';
import { SiteContext, type Site } from './ui/hooks';
import { Login } from './pages/Login';
import { Overview } from './pages/Overview';
import { Channels } from './pages/Channels';
import { Alarms } from './pages/Alarms';
import { Trends } from './pages/Trends';
import { Instances } from './pages/Instances';
import { Rules } from './pages/Rules';
import { Users } from './pages/Users';
import { Audit } from './pages/Audit';
import { CloudContext, FleetAlarms, FleetAudit, FleetSite, Sites, newCloud } from './pages/Fleet';
import { authFetch } from './api/client';
import { RemoteSite } from './pages/RemoteSite';

const baseUrl = ''; // the app is served by the API's own origin

/** fleet is set when the cloud hub serves the app (web.FleetHandler adds the meta tag). */
const fleet = document.querySelector('meta[name="voltage-app"]')?.getAttribute('content') === 'fleet';

const session = new Session(refresher(location.origin), sessionStorage);

function wsUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

export interface PageDef {
  page: string;
  title: string;
  need: Role;
  render: (r: Route) => preact.JSX.Element;
}

/** The fleet pages of the cloud hub. */
export const fleetPages: PageDef[] = [
  {
    page: 'sites',
    title: 'Sites',
    need: 'viewer',
    render: (r) =>
      r.params.length > 1 ? (
        // #/sites/{site}/{page}/…: the site's own pages through the hub.
        <RemoteSite
          id={r.params[0]}
          route={{ page: r.params[1], params: r.params.slice(2), query: r.query }}
          pages={sitePages.filter((p) => remotePages.includes(p.page))}
          fetch={authFetch(session)}
        />
      ) : r.params[0] ? (
        <FleetSite id={r.params[0]} />
      ) : (
        <Sites />
      ),
  },
  { page: 'alarms', title: 'Fleet alarms', need: 'viewer', render: (r) => <FleetAlarms query={r.query} /> },
  { page: 'audit', title: 'Audit log', need: 'admin', render: () => <FleetAudit /> },
];

/** The site pages a cloud user opens through the hub (#/sites/{site}/{page}). */
const remotePages = ['overview', 'channels', 'instances', 'trends', 'alarms', 'rules', 'audit'];

/** The site pages, in menu order, with the least role that sees each. */
export const sitePages: PageDef[] = [
  { page: 'overview', title: 'Overview', need: 'viewer', render: () => <Overview /> },
  { page: 'channels', title: 'Channels', need: 'viewer', render: (r) => <Channels params={r.params} /> },
  { page: 'instances', title: 'Instances', need: 'viewer', render: (r) => <Instances params={r.params} /> },
  { page: 'trends', title: 'Trends', need: 'viewer', render: (r) => <Trends query={r.query} /> },
  { page: 'alarms', title: 'Alarms', need: 'viewer', render: (r) => <Alarms query={r.query} /> },
  { page: 'rules', title: 'Rules', need: 'viewer', render: (r) => <Rules params={r.params} /> },
  { page: 'users', title: 'Users', need: 'admin', render: () => <Users /> },
  { page: 'audit', title: 'Audit log', need: 'admin', render: () => <Audit /> },
];

export function App() {
  const [state, setState] = useState<SessionState | null>(session.state);
  const [notice, setNotice] = useState('');
  const [route, setRoute] = useState(parseHash(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  useEffect(
    () =>
      session.subscribe((s, reason) => {
        setState(s);
        if (!s && reason) setNotice(reason);
      }),
    [],
  );
  const user = state?.user;
  const live = useMemo(
    () => (user && !fleet ? new Live({ url: wsUrl(), token: () => session.token(), refresh: () => session.refresh() }) : null),
    [user],
  );
  useEffect(() => {
    live?.start();
    return () => live?.stop();
  }, [live]);
  const api = useMemo(() => newApi(baseUrl, session), []);
  const cloud = useMemo(() => newCloud(authFetch(session)), []);

  if (!state) {
    return (
      <Login
        baseUrl={baseUrl}
        notice={notice}
        onLogin={(p) => {
          setNotice('');
          session.start(p);
        }}
      />
    );
  }
  const site: Site = { api, live, role: state.role, user: state.user, base: '#/' };
  const pages = fleet ? fleetPages : sitePages;
  const page = route.page === 'overview' && fleet ? 'sites' : route.page;
  const def = pages.find((p) => p.page === page);
  return (
    <SiteContext.Provider value={site}>
      <CloudContext.Provider value={cloud}>
      <Shell route={{ ...route, page }} live={live} state={state} pages={pages}>
        {!def ? (
          <div class="page empty">No such page.</div>
        ) : !can(state.role, def.need) ? (
          <div class="page empty">This page needs the role {def.need}; you are {state.role}.</div>
        ) : (
          def.render(route)
        )}
      </Shell>
      </CloudContext.Provider>
    </SiteContext.Provider>
  );
}

function Shell(props: { route: Route; live: Live | null; state: SessionState; pages: PageDef[]; children: preact.ComponentChildren }) {
  const [menu, setMenu] = useState(false);
  return (
    <div class="shell">
      <header>
        <button class="menu-btn" aria-label="Menu" onClick={() => setMenu(!menu)}>
          ☰
        </button>
        <span class="brand">VoltageEMS{fleet ? ' fleet' : ''}</span>
        {fleet ? <span class="conn conn-open" title="The fleet pages refresh every few seconds">polling</span> : <ConnBadge live={props.live} />}
        <span class="who" data-testid="who">
          {props.state.user} · {props.state.role}
        </span>
        <button
          onClick={() => {
            const refresh = session.state?.refresh;
            if (refresh) {
              void fetch('/auth/logout', {
                method: 'POST',
                headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${session.state?.access}` },
                body: JSON.stringify({ refresh_token: refresh }),
              }).catch(() => undefined);
            }
            session.end();
          }}
        >
          Log out
        </button>
      </header>
      <nav class={menu ? 'open' : ''} onClick={() => setMenu(false)}>
        {props.pages
          .filter((p) => can(props.state.role, p.need))
          .map((p) => (
            <a key={p.page} href={`#/${p.page}`} class={props.route.page === p.page ? 'active' : ''}>
              {p.title}
            </a>
          ))}
      </nav>
      <main>{props.children}</main>
    </div>
  );
}

function ConnBadge({ live }: { live: Live | null }) {
  const [st, setSt] = useState<ConnState>(live?.state ?? 'closed');
  useEffect(() => {
    if (!live) return;
    setSt(live.state);
    return live.onState(setSt);
  }, [live]);
  const text = { open: 'live', connecting: 'connecting…', reconnecting: 'reconnecting…', closed: 'offline' }[st];
  return (
    <button
      class={`conn conn-${st}`}
      data-testid="conn"
      title={live?.lastError || 'WebSocket connection to the gateway'}
      onClick={() => live?.reconnectNow()}
    >
      {text}
    </button>
  );
}
