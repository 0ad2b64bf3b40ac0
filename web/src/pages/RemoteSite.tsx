// A site's own pages (overview, channels, instances, trends, alarms, rules)
// reached through the cloud hub: the same components as on the site, with the
// site API at the hub's /sites/{site}/api (the hub's site API proxy, which the
// site answers under its own role checks for cloud:{user}) and a Poller instead
// of the WebSocket, which the hub does not carry.
import { useMemo } from 'preact/hooks';
import createClient from 'openapi-fetch';
import type { paths } from '../api/schema';
import type { Api } from '../api/client';
import { SiteContext, unwrap, useLoad, type Site } from '../ui/hooks';
import { Status } from '../ui/parts';
import { Poller, type PollSource } from '../lib/poll';
import { can, type Role } from '../lib/roles';
import type { Route } from '../lib/router';
import type { Value } from '../lib/points';

/** RemotePage is a site page the drill-in offers (app.tsx's sitePages). */
export interface RemotePage {
  page: string;
  title: string;
  need: Role;
  render: (r: Route) => preact.JSX.Element;
}

/** remoteBase is the site API's base URL at the hub. */
export function remoteBase(origin: string, site: string): string {
  return `${origin}/sites/${encodeURIComponent(site)}/api`;
}

/** apiSource reads values for a Poller through a site API client. */
export function apiSource(api: Api): PollSource {
  return {
    points: async (pattern) => ((await unwrap(api.GET('/points', { params: { query: { pattern, limit: 10000 } } }))).points ?? []) as Value[],
    measurements: async (instance) =>
      ((await unwrap(api.GET('/instances/{instance}/measurements', { params: { path: { instance: String(instance) } } }))).measurements ??
        []) as Value[],
  };
}

export function RemoteSite(props: { id: string; route: Route; pages: RemotePage[]; fetch: typeof fetch }) {
  const { id, route, pages } = props;
  const api = useMemo(() => createClient<paths>({ baseUrl: remoteBase(location.origin, id), fetch: props.fetch }), [id]);
  const poller = useMemo(() => new Poller(apiSource(api)), [api]);
  // The role the site grants this cloud user (its cloud role, capped by the site).
  const me = useLoad(() => unwrap(api.GET('/auth/me')), [api]);
  const base = `#/sites/${encodeURIComponent(id)}/`;
  const def = pages.find((p) => p.page === route.page);
  return (
    <div class="page remote-site" data-testid="remote-site">
      <p class="crumbs">
        <a href="#/sites">← Sites</a> · <a href={`#/sites/${encodeURIComponent(id)}`}>{id} in the cloud</a>
      </p>
      <Status of={me}>
        {(u) => {
          const site: Site = { api, live: poller, role: u.role as Role, user: u.name, base, name: id };
          return (
            <>
              <div class="remote-bar">
                <strong>{id}</strong>
                <span class="conn conn-open" title="The hub carries no WebSocket: these pages refresh every few seconds">
                  polling
                </span>
                <span data-testid="remote-role">
                  as {u.name} · {u.role}
                </span>
                <div class="subnav" role="navigation">
                  {pages
                    .filter((p) => can(site.role, p.need))
                    .map((p) => (
                      <a key={p.page} href={base + p.page} class={p.page === route.page ? 'active' : ''}>
                        {p.title}
                      </a>
                    ))}
                </div>
              </div>
              <SiteContext.Provider value={site}>
                {!def ? (
                  <div class="page empty">No such page.</div>
                ) : !can(site.role, def.need) ? (
                  <div class="page empty">
                    This page needs the role {def.need}; the site gives you {site.role}.
                  </div>
                ) : (
                  def.render(route)
                )}
              </SiteContext.Provider>
            </>
          );
        }}
      </Status>
    </div>
  );
}
