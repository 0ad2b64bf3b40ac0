// Roles of the public API, least first (docs/apigateway.md). The UI hides what a
// role may not do; the gateway refuses it anyway.
export type Role = 'viewer' | 'operator' | 'engineer' | 'admin';

const order: Role[] = ['viewer', 'operator', 'engineer', 'admin'];

export function isRole(s: unknown): s is Role {
  return typeof s === 'string' && (order as string[]).includes(s);
}

/** can tells whether role has at least the rights of need. */
export function can(role: Role | undefined, need: Role): boolean {
  if (!role) return false;
  return order.indexOf(role) >= order.indexOf(need);
}
