// serve's logger: pino writing one JSON object per line (level as a word, ISO time, msg), with the log
// context of ./logger.ts (scan, uid, request id) on every line and secrets redacted twice over: pino's
// `redact` for the known places (Authorization headers, passwords, tokens, registry auth, the database
// URL's password) and ./redact.ts for any key that looks secret and for credentials inside strings.
import { pino } from "pino";
import { logContext, type LogFields, type Logger, type LogLevel } from "./logger.js";
import { REDACTED, scrub, scrubString } from "./redact.js";

/** pino's redaction paths: where secrets are known to travel. */
export const REDACT_PATHS = [
  "authorization", "*.authorization", "headers.authorization", "*.headers.authorization", "req.headers.authorization",
  "headers.cookie", "*.headers.cookie",
  "password", "*.password", "*.*.password",
  "token", "*.token", "accessToken", "*.accessToken", "bearerToken", "*.bearerToken",
  "auth", "*.auth", "*.*.auth", "auths", "*.auths",
  '[".dockerconfigjson"]', '*[".dockerconfigjson"]',
  "databaseUrl", "*.databaseUrl",
];

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
      redact: {
        paths: REDACT_PATHS,
        // The database URL keeps its user, host and database: only the password goes.
        censor: (value: unknown, path: string[]) => (path[path.length - 1] === "databaseUrl" && typeof value === "string" ? scrubString(value) : REDACTED),
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
