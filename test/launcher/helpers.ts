// Drives the real built tcclrun (node bin/tcclrun.js) as a child process.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = join(ROOT, 'bin/tcclrun.js');
export const FIXTURES = join(ROOT, 'test/launcher/fixtures');
export const fixture = (name: string) => join(FIXTURES, name);

function newestMtime(dir: string, ext: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p, ext));
    else if (e.name.endsWith(ext)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Compile with tsc unless dist/ is newer than every source file. */
export function buildIfStale(): void {
  const outputs = ['cli.js', 'launcher.js', 'args.js', 'output.js'].map((f) => join(ROOT, 'dist/src/launcher', f));
  outputs.push(join(ROOT, 'dist/src/rendezvous/ws-server.js'));
  const oldestOut = Math.min(...outputs.map((p) => (existsSync(p) ? statSync(p).mtimeMs : 0)));
  if (oldestOut > newestMtime(join(ROOT, 'src'), '.ts')) return;
  // Errors in files other sessions are editing must not block these tests; tsc still emits.
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', ROOT], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  for (const p of outputs) {
    if (!existsSync(p)) throw new Error(`build did not produce ${p}:\n${r.stdout}${r.stderr}`);
  }
}

export interface Run {
  proc: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the exit status once the launcher has exited and its pipes closed. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once `count` stdout lines match `re` (with the match objects). */
  waitFor(re: RegExp, count: number): Promise<RegExpMatchArray[]>;
}

const running = new Set<ChildProcess>();

export function start(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Run {
  const proc = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  const waiters: { re: RegExp; count: number; resolve: (m: RegExpMatchArray[]) => void; reject: (e: Error) => void }[] = [];
  const run: Run = {
    proc,
    stdout: '',
    stderr: '',
    done: new Promise((res) =>
      proc.on('close', (code, signal) => {
        running.delete(proc);
        for (const w of waiters.splice(0)) w.reject(new Error(`launcher exited before output matched ${w.re}\n${run.stdout}\n${run.stderr}`));
        res({ code, signal });
      }),
    ),
    waitFor(re, count) {
      return new Promise((resolve, reject) => {
        waiters.push({ re, count, resolve, reject });
        check();
      });
    },
  };
  const matches = (re: RegExp) => run.stdout.split('\n').map((l) => l.match(re)).filter((m): m is RegExpMatchArray => m !== null);
  const check = () => {
    for (const w of [...waiters]) {
      const m = matches(w.re);
      if (m.length >= w.count) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
    run.stdout += s;
    check();
  });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (run.stderr += s));
  return run;
}

/** Run to completion. */
export async function tcclrun(args: string[], opts?: { cwd?: string; env?: NodeJS.ProcessEnv }) {
  const r = start(args, opts);
  const status = await r.done;
  return { ...status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Safety net for afterEach: no launcher may outlive its test. SIGTERM first so the launcher
 * reaps its ranks; SIGKILL only if it does not exit.
 */
export async function killStragglers(): Promise<void> {
  await Promise.all(
    [...running].map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          const t = setTimeout(() => p.kill('SIGKILL'), 5000);
          p.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          p.kill('SIGTERM');
        }),
    ),
  );
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Pids from fixture lines like "[2] ready pid=1234". */
export const readyPids = (m: RegExpMatchArray[]) => m.map((x) => Number(x[2]));
export const READY = /^\[(\d+)\] ready pid=(\d+)$/;
