// The logging seam of the controllers, the webhook and the API: a small Logger interface (serve puts pino
// behind it, see ./pino.ts) and a context that follows async work, so that every line written while a scan
// attempt, an admission review or an API request runs carries its scan, uid or request id, whichever module
// writes it. Nothing here depends on pino.
import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose every line also carries `bindings`. */
  child(bindings: LogFields): Logger;
}

/** The callback shape of the controllers, informers, leader election and events: message, fields, level (default info). */
export type LogFn = (msg: string, fields?: LogFields, level?: LogLevel) => void;
/** The callback shape of the webhook, its TLS manager and the report API. */
export type LevelLogFn = (level: string, msg: string, fields?: LogFields) => void;

function levelOf(level: string | undefined, fallback: LogLevel): LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(level ?? "") ? (level as LogLevel) : fallback;
}

/** A `(msg, fields, level)` callback writing to `logger`; lines without a level are written at `fallback`. */
export function logFn(logger: Logger, fallback: LogLevel = "info"): LogFn {
  return (msg, fields, level) => logger[levelOf(level, fallback)](msg, fields);
}

/** A `(level, msg, fields)` callback writing to `logger` (an unknown level is info). */
export function levelLogFn(logger: Logger): LevelLogFn {
  return (level, msg, fields) => logger[levelOf(level, "info")](msg, fields);
}

/** A logger that writes nothing. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silentLogger };

const context = new AsyncLocalStorage<LogFields>();

/**
 * Runs `fn` with `fields` added to the log context: every line written by `fn` and by the async work it
 * starts carries them (serve's logger reads them on each line). Nested contexts add to the outer one.
 */
export function withLogContext<T>(fields: LogFields, fn: () => T): T {
  const outer = context.getStore();
  return context.run(outer ? { ...outer, ...fields } : fields, fn);
}

/** The fields of the current log context (undefined outside any). */
export function logContext(): LogFields | undefined {
  return context.getStore();
}

/** A short random id for a scan attempt or a request (12 hex digits). */
export function logId(): string {
  return randomBytes(6).toString("hex");
}
