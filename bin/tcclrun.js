#!/usr/bin/env node
// tcclrun launcher shim: the implementation is compiled TypeScript in dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/src/launcher/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(`tcclrun: ${fileURLToPath(cli)} not found; run \`npm run build\` first\n`);
  process.exit(1);
}
const { run } = await import(cli.href);
await run(process.argv.slice(2));
