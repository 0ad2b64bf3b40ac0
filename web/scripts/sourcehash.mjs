// The hash of the web UI's sources: for every file of src/ and the build files,
// in byte order of their slash-separated paths, "path\0sha256(content)\n",
// hashed with SHA-256. web/dist_test.go computes the same.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const buildFiles = ['index.html', 'package.json', 'package-lock.json', 'tsconfig.json', 'vite.config.ts'];

function walk(root, rel, out) {
  for (const name of readdirSync(join(root, rel))) {
    const r = rel ? `${rel}/${name}` : name;
    if (statSync(join(root, r)).isDirectory()) walk(root, r, out);
    else out.push(r);
  }
}

export function sourceHash(root) {
  const files = [...buildFiles];
  walk(root, 'src', files);
  files.sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : Buffer.from(a) > Buffer.from(b) ? 1 : 0));
  const h = createHash('sha256');
  for (const f of files) {
    const c = createHash('sha256').update(readFileSync(join(root, f))).digest('hex');
    h.update(`${f}\0${c}\n`);
  }
  return h.digest('hex');
}
