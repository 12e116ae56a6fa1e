// Content digests as registries use them: `algorithm:hex`, sha256 (64 hex digits) or sha512 (128),
// lowercase only, as go-digest validates them.
import { ReferenceError } from "./errors.js";

export type DigestAlgorithm = "sha256" | "sha512";

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
}

export const DIGEST_HEX_LENGTH: Readonly<Record<DigestAlgorithm, number>> = { sha256: 64, sha512: 128 };

/** Splits and checks a digest; throws ReferenceError (part "digest") naming what is wrong. */
export function parseDigest(s: string): ParsedDigest {
  const bad = (why: string) => new ReferenceError(`invalid digest ${JSON.stringify(s)}: ${why}`, "digest");
  const i = s.indexOf(":");
  if (i < 0) throw bad("expected algorithm:hex, e.g. sha256:<64 hex digits>");
  const algorithm = s.slice(0, i);
  const hex = s.slice(i + 1);
  if (algorithm !== "sha256" && algorithm !== "sha512") throw bad(`algorithm ${JSON.stringify(algorithm)} is not supported (sha256 or sha512)`);
  const want = DIGEST_HEX_LENGTH[algorithm];
  if (hex.length !== want || !/^[a-f0-9]+$/.test(hex)) throw bad(`${algorithm} takes ${want} lowercase hex digits`);
  return { algorithm, hex };
}

export function isDigest(s: string): boolean {
  try {
    parseDigest(s);
    return true;
  } catch {
    return false;
  }
}
