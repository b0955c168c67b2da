#!/usr/bin/env node
// Builds the shared-memory addon with node-gyp and this machine's compiler, using the
// headers of the running Node when they are installed (no download). Run by `npm install`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const fail = (why) => {
  process.stderr.write(`\ntccl: cannot build the shared-memory addon (native/shm.c): ${why}\n` +
    'tccl needs node-gyp, python3, make and a C compiler (e.g. `apt-get install build-essential python3`).\n' +
    'The tcp transport works without it; --transport shm and shm in auto mode need it.\n\n');
  process.exit(1);
};

function findNodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const require = createRequire(import.meta.url);
  for (const candidate of ['node-gyp/bin/node-gyp.js', 'npm/node_modules/node-gyp/bin/node-gyp.js']) {
    try { return require.resolve(candidate); } catch { /* next */ }
  }
  // npm's bundled copy, next to the npm that runs this script or the global one.
  const npmCli = process.env.npm_execpath;
  const guesses = [
    npmCli && join(dirname(dirname(npmCli)), 'node_modules/node-gyp/bin/node-gyp.js'),
    join(dirname(dirname(process.execPath)), 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  return guesses.find((g) => g && existsSync(g));
}

const gyp = findNodeGyp();
if (!gyp) fail('node-gyp not found (it ships with npm; install it with `npm install -g node-gyp`)');
const prefix = dirname(dirname(process.execPath));
const args = [gyp, 'rebuild'];
// Local headers when present: no download of a header tarball.
if (existsSync(join(prefix, 'include/node/node_api.h'))) args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (r.error) fail(r.error.message);
if (r.status !== 0) fail(`node-gyp exited with status ${r.status} (its output is above)`);
