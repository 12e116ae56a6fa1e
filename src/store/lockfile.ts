// Cross-process locks for the CLI's store folder: a lock is a file created with O_EXCL that names its owner
// (pid, host, a random token). A lock whose owner process is gone (same host) is stale and is broken, under a
// short-lived second lock so two waiters never both break it and then both take it. Used for the manifest
// lock of the file index (two `portcullis scan` runs of one image index it once) and for the store's PGlite
// folder (two processes that open one PGlite folder at once corrupt it).
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { PortcullisError } from "../errors.js";

/** A lock file older than this without a readable owner (its creator died between create and write) is stale. */
const UNREADABLE_STALE_MS = 10_000;
/** Most bytes read of a lock file: an owner record is well under 200. */
const MAX_LOCK_BYTES = 4096;

/** Locks this process holds, removed if it exits holding them (a crash leaves them to stale detection). */
const held = new Map<string, string>();
let exitHook = false;

export class LockTimeoutError extends PortcullisError {
  readonly domain = "store";
  readonly code = "LOCK_TIMEOUT";
  constructor(path: string, what: string, owner: LockOwner | undefined, waitedMs: number) {
    super(`${what} is locked by ${owner ? `process ${owner.pid} on ${owner.host} since ${owner.since}` : "another process"} (${path}); gave up after ${(waitedMs / 1000).toFixed(0)} s`);
  }
}

export interface LockOptions {
  /** What the lock guards, for the error after `timeoutMs`. */
  what: string;
  /** How long to wait for another owner (default 10 minutes: an index or a database update may take that). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called once when the lock is still held by another after about a second (to tell a user why nothing happens). */
  onWait?: (owner: string) => void;
}

export interface FileLock {
  release(): void;
}

/** Takes the lock at `path`, waiting (polling) while a live process holds it. */
export async function acquireLock(path: string, o: LockOptions): Promise<FileLock> {
  const t0 = Date.now();
  const timeout = o.timeoutMs ?? 600_000;
  let delay = 10;
  let told = false;
  for (;;) {
    const token = tryCreate(path);
    if (token) return { release: () => release(path, token) };
    const owner = readOwner(path);
    if (owner !== "gone" && isStale(path, owner)) breakStale(path, owner);
    else if (owner !== "gone") {
      if (Date.now() - t0 >= timeout) throw new LockTimeoutError(path, o.what, owner, Date.now() - t0);
      if (!told && o.onWait && Date.now() - t0 >= 1000) {
        told = true;
        o.onWait(owner ? `process ${owner.pid} on ${owner.host}` : "another process");
      }
      o.signal?.throwIfAborted();
      await sleep(delay, undefined, o.signal ? { signal: o.signal } : undefined);
      delay = Math.min(200, delay * 2);
    }
  }
}

/** Runs `fn` holding the lock at `path`. */
export async function withFileLock<T>(path: string, o: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(path, o);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

interface LockOwner {
  pid: number;
  host: string;
  since: string;
  token: string;
}

function tryCreate(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return undefined;
    throw e;
  }
  const token = randomBytes(12).toString("hex");
  try {
    writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString(), token } satisfies LockOwner));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  held.set(path, token);
  if (!exitHook) {
    exitHook = true;
    process.on("exit", () => {
      for (const [p, t] of held) release(p, t);
    });
  }
  return token;
}

/** The owner record, undefined when unreadable (being written, or damaged), "gone" when there is no file. */
function readOwner(path: string): LockOwner | undefined | "gone" {
  let text: string;
  try {
    const b = readFileSync(path);
    if (b.length > MAX_LOCK_BYTES) return undefined;
    text = b.toString("utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return "gone";
    throw e;
  }
  try {
    const v = JSON.parse(text) as Partial<LockOwner>;
    if (Number.isSafeInteger(v.pid) && typeof v.host === "string" && typeof v.token === "string" && typeof v.since === "string") return v as LockOwner;
  } catch {
    // unreadable: judged by age below
  }
  return undefined;
}

function isStale(path: string, owner: LockOwner | undefined): boolean {
  if (!owner) {
    try {
      return Date.now() - statSync(path).mtimeMs > UNREADABLE_STALE_MS;
    } catch {
      return false;
    }
  }
  // Another host's process cannot be asked; its lock stands until it removes it.
  if (owner.host !== hostname()) return false;
  if (owner.pid === process.pid) return !held.has(path) || held.get(path) !== owner.token;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/**
 * Removes a stale lock, holding `path.break` so that only one waiter does, and only if the file still holds
 * the owner judged stale (another waiter may have broken it and taken the lock meanwhile).
 */
function breakStale(path: string, judged: LockOwner | undefined): void {
  const breaker = `${path}.break`;
  const token = tryCreate(breaker);
  if (!token) {
    // Someone else is breaking it; a breaker left by a crash is itself stale after a while.
    const b = readOwner(breaker);
    if (b !== "gone" && isStale(breaker, b)) release(breaker, b?.token, true);
    return;
  }
  try {
    const now = readOwner(path);
    if (now === "gone") return;
    if ((now?.token ?? "") === (judged?.token ?? "")) unlinkQuiet(path);
  } finally {
    release(breaker, token);
  }
}

function release(path: string, token: string | undefined, force = false): void {
  if (held.get(path) === token) held.delete(path);
  const owner = readOwner(path);
  if (owner === "gone") return;
  if (force || owner?.token === token) unlinkQuiet(path);
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}
