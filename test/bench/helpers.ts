// Running tcclbench / mpibench as real processes, and reading their table.
import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));

export interface Ran { code: number; stdout: string; stderr: string }

export const runProcess = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000) =>
  new Promise<Ran>((resolve) => {
    execFile(cmd, args, { cwd: root, env: { ...process.env, ...env }, maxBuffer: 64 << 20, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });

/** tcclrun -n N bench/tcclbench.ts ARGS, without rank prefixes. */
export const tcclbench = (n: number, args: string[], env: NodeJS.ProcessEnv = {}) =>
  runProcess(process.execPath, ['bin/tcclrun.js', '-n', String(n), '--no-prefix', '--timeout', '110', 'bench/tcclbench.ts', ...args], env);

export interface TableRow { size: number; count: number; type: string; redop: string; root: number; wrongOut: string; wrongIn: string; algbwOut: number; busbwOut: number }

/** The data rows of an nccl-tests-style table. */
export function tableRows(stdout: string): TableRow[] {
  return stdout.split('\n').filter((l) => /^\s+\d+\s+\d+\s+\w+/.test(l)).map((l) => {
    const f = l.trim().split(/\s+/);
    return { size: Number(f[0]), count: Number(f[1]), type: f[2], redop: f[3], root: Number(f[4]), algbwOut: Number(f[6]), busbwOut: Number(f[7]), wrongOut: f[8], wrongIn: f[12] };
  });
}

const has = (cmd: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
/** Open MPI is there, or bench/mpi/build.sh can install it (root with apt-get: CI). */
export const canRunMpi = (has('mpicc') && has('mpirun')) || (process.getuid?.() === 0 && has('apt-get'));
/** mpirun flags for the shared-memory reference on this machine. */
export const MPIRUN_FLAGS = ['--oversubscribe', '--mca', 'btl', 'self,vader', ...(process.getuid?.() === 0 ? ['--allow-run-as-root'] : [])];
