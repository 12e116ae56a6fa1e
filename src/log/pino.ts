// serve's logger: pino writing one JSON object per line (level as a word, ISO time, msg), with the log
// context of ./logger.ts (scan, uid, request id) on every line and secrets redacted by ./redact.ts, on the
// fields (any key that looks secret: Authorization headers, passwords, tokens, registry auth; the database
// URL keeps all but its password) and inside every string, the message included. (pino's own `redact`
// would look at the same keys a second time.)
import { pino } from "pino";
import { logContext, type LogFields, type Logger, type LogLevel } from "./logger.js";
import { scrub, scrubString } from "./redact.js";

export interface CreateLoggerOptions {
  level: LogLevel;
  /** Where the lines go; default standard error, written synchronously (no line is lost at exit). */
  destination?: pino.DestinationStream;
}

export function createLogger(o: CreateLoggerOptions): Logger {
  const root = pino(
    {
      level: o.level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      // Errors anywhere in a line are serialized (and scrubbed) by formatters.log, not by pino's `err` serializer.
      serializers: { err: (e: unknown) => e },
      formatters: {
        level: (label) => ({ level: label }),
        bindings: (b) => scrub(b) as Record<string, unknown>,
        log: (obj) => scrub(obj) as Record<string, unknown>,
      },
      // The async context (scan attempt, admission uid, API request id); the line's own fields win.
      mixin: () => ({ ...logContext() }),
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => (typeof a === "string" ? scrubString(a) : a)) as Parameters<typeof method>);
        },
      },
    },
    o.destination ?? pino.destination({ dest: 2, sync: true }),
  );
  return wrap(root);
}

function wrap(p: pino.Logger): Logger {
  return {
    debug: (msg, fields?: LogFields) => p.debug(fields ?? {}, msg),
    info: (msg, fields?: LogFields) => p.info(fields ?? {}, msg),
    warn: (msg, fields?: LogFields) => p.warn(fields ?? {}, msg),
    error: (msg, fields?: LogFields) => p.error(fields ?? {}, msg),
    child: (bindings) => wrap(p.child(bindings)),
  };
}
