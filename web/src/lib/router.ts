// Routing by the URL fragment (#/alarms): the API owns the server's paths, so a
// reload of any page asks the server for / only.
export interface Route {
  page: string; // "overview", "channels", ...
  params: string[]; // the rest of the path
  query: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const h = hash.replace(/^#\/?/, '');
  const [path, q = ''] = h.split('?', 2);
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] ?? 'overview', params: parts.slice(1), query: new URLSearchParams(q) };
}

export function href(...parts: (string | number)[]): string {
  return '#/' + parts.map((p) => encodeURIComponent(String(p))).join('/');
}
