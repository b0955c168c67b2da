/**
 * First module of every `tcclrun --threads` rank thread: makes process.argv look as it does
 * in a process rank, registers tsx for TypeScript scripts (a worker does not inherit the
 * launcher's --import hooks), then runs the user's script.
 */
import { pathToFileURL } from 'node:url';
import { workerData } from 'node:worker_threads';

const entry = (workerData as { tcclEntry: { script: string; args: string[]; typescript: boolean } }).tcclEntry;
process.argv = [process.execPath, entry.script, ...entry.args];
if (entry.typescript) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(pathToFileURL(entry.script).href);
