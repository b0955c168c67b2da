/**
 * tcclrun entry point: argument errors, help/version, signal forwarding and the exit code.
 * The job itself lives in launcher.ts.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, UsageError, USAGE } from './args.js';
import { Job } from './launcher.js';
import { ThreadJob } from './threads.js';
import { TcclError } from '../errors.js';

/** Exit status for command-line mistakes (getopt / argparse convention). */
export const USAGE_EXIT_CODE = 2;
const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Run tcclrun with `argv` (no node / script path); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`tcclrun: ${e.detail}\nRun "tcclrun --help" for usage.\n`);
    return USAGE_EXIT_CODE;
  }
  if (parsed.kind === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`tcclrun (tccl) ${packageVersion()}\n`);
    return 0;
  }

  const job = parsed.options.threads ? new ThreadJob(parsed.options) : new Job({ ...parsed.options, stdinToRank0: true });
  // Handlers stay installed until exit: a signal during the final flush must not kill us
  // with output still buffered. They do not keep the event loop alive.
  for (const sig of FORWARDED_SIGNALS) process.on(sig, () => job.interrupt(sig));
  try {
    return (await job.run()).exitCode;
  } catch (e) {
    // A request that cannot be met on this host (e.g. --bind-to core with more ranks than CPUs).
    if (!(e instanceof TcclError && e.code === 'TCCL_ERR_INVALID_ARGUMENT')) throw e;
    process.stderr.write(`tcclrun: ${e.detail}\n`);
    return USAGE_EXIT_CODE;
  }
}

/** What bin/tcclrun.js calls: sets the exit code and lets pending output drain. */
export async function run(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  let code: number;
  try {
    code = await main(argv);
  } catch (e) {
    process.stderr.write(`tcclrun: ${e instanceof Error ? e.message : String(e)}\n`);
    code = 1;
  }
  process.exitCode = code;
  // Exit naturally so stdout/stderr flush; force it if a stray handle keeps us alive.
  setTimeout(() => process.exit(code), 2000).unref();
}

function packageVersion(): string {
  // src/launcher and dist/src/launcher sit at different depths: walk up to our package.json.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'tccl' && pkg.version) return pkg.version;
    } catch {
      // no package.json here; keep walking
    }
    const up = dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}
