import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStore } from '../../src/rendezvous/file-store.js';
import { storeBehaviour, text } from './store-behaviour.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FILE_STORE_MODULE = new URL('../../src/rendezvous/file-store.ts', import.meta.url).href;

storeBehaviour('FileStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tccl-filestore-'));
  const handles: FileStore[] = [];
  return {
    open: async () => {
      const store = new FileStore(dir);
      handles.push(store);
      return store;
    },
    teardown: async () => {
      await Promise.all(handles.map((store) => store.close()));
      await rm(dir, { recursive: true, force: true });
    },
  };
});

/** Runs `adds` add(key, 1) calls in a fresh node process; resolves to the values it got. */
function addFromChildProcess(dir: string, key: string, adds: number): Promise<number[]> {
  const script = `
    const { FileStore } = await import(process.env.FILE_STORE_MODULE);
    const store = new FileStore(process.env.STORE_DIR);
    const values = await Promise.all(Array.from({ length: Number(process.env.ADDS) }, () => store.add(process.env.KEY, 1)));
    await store.close();
    process.stdout.write(JSON.stringify(values));
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    env: { ...process.env, FILE_STORE_MODULE, STORE_DIR: dir, KEY: key, ADDS: String(adds) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`child exited ${code}: ${stderr}`))));
  });
}

describe('FileStore', () => {
  let dir: string;
  const handles: FileStore[] = [];
  const open = (opts?: ConstructorParameters<typeof FileStore>[1]) => {
    const store = new FileStore(dir, opts);
    handles.push(store);
    return store;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tccl-filestore-'));
  });
  afterEach(async () => {
    await Promise.all(handles.splice(0).map((store) => store.close()));
    await rm(dir, { recursive: true, force: true });
  });

  it('add is atomic across processes', async () => {
    const processes = 4;
    const addsEach = 15;
    const perProcess = await Promise.all(Array.from({ length: processes }, () => addFromChildProcess(dir, 'cross', addsEach)));
    const total = processes * addsEach;
    expect(perProcess.flat().sort((x, y) => x - y)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(text(await open().get('cross'))).toBe(String(total));
  }, 15_000);

  it('maps any key, however odd, to its own file inside dir', async () => {
    const store = open();
    const keys = ['', '../escape', 'a/b\\c', 'ünïcödé', 'x'.repeat(1_000), 'x'.repeat(1_001)];
    await Promise.all(keys.map((key, i) => store.set(key, String(i))));
    for (const [i, key] of keys.entries()) expect(text(await store.get(key, 0))).toBe(String(i));
    expect(await readdir(dir)).toHaveLength(keys.length);
  });

  it('keeps values for other handles after close, in the same directory', async () => {
    await open().set('persisted', 'yes');
    expect(text(await open().get('persisted', 0))).toBe('yes');
  });

  it('breaks a lock left behind by a dead process', async () => {
    const store = open({ staleLockMs: 1_000 });
    await store.add('locked', 1);
    const [counterFile] = await readdir(dir);
    const lockPath = join(dir, `${counterFile}.lock`);
    await writeFile(lockPath, '');
    const longAgo = new Date(Date.now() - 60_000);
    await utimes(lockPath, longAgo, longAgo);
    expect(await store.add('locked', 1)).toBe(2);
    expect(await readdir(dir)).toEqual([counterFile]);
  });

  it('times out add while a live process holds the lock', async () => {
    const store = open({ timeoutMs: 30 });
    await store.add('held', 1);
    const [counterFile] = await readdir(dir);
    await writeFile(join(dir, `${counterFile}.lock`), '');
    await expect(store.add('held', 1)).rejects.toMatchObject({ code: 'TCCL_ERR_TIMEOUT', message: expect.stringContaining('"held"') });
  });
});
