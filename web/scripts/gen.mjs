// Generates the TypeScript types of the public APIs from the checked-in OpenAPI
// documents: the site gateway's (openapi/openapi.json → src/api/schema.d.ts)
// and the cloud hub's (openapi/cloud-openapi.json → src/api/cloud-schema.d.ts).
// The first line of each records its document's SHA-256, so the Go test
// TestClientMatchesSpec can tell when a client is stale.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import openapiTS, { astToString } from 'openapi-typescript';

export const clients = [
  { spec: 'openapi.json', out: 'schema.d.ts' },
  { spec: 'cloud-openapi.json', out: 'cloud-schema.d.ts' },
];

for (const c of clients) {
  const spec = readFileSync(new URL(`../../openapi/${c.spec}`, import.meta.url));
  const sha = createHash('sha256').update(spec).digest('hex');
  const ast = await openapiTS(JSON.parse(spec.toString('utf8')));
  const header =
    `// ${c.spec} sha256 ${sha}\n` +
    `// Generated from openapi/${c.spec} by web/scripts/gen.mjs (go tool task web). Do not edit.\n`;
  writeFileSync(new URL(`../src/api/${c.out}`, import.meta.url), header + astToString(ast));
  console.log(`wrote src/api/${c.out} (${c.spec} ${sha.slice(0, 12)})`);
}
