// Records in dist/.source-hash the hash of everything the build is made from,
// so the Go test TestDistMatchesSources can tell when dist/ is older than the
// sources. The same walk is in web/dist_test.go: keep them in step.
import { writeFileSync } from 'node:fs';
import { sourceHash } from './sourcehash.mjs';

const h = sourceHash(new URL('..', import.meta.url).pathname);
writeFileSync(new URL('../dist/.source-hash', import.meta.url), h + '\n');
console.log(`dist/.source-hash ${h}`);
