import { ReferenceError } from "./reference.js";

const HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };

export interface ParsedDigest {
  algorithm: "sha256" | "sha512";
  hex: string;
}

export function parseDigest(s: string): ParsedDigest {
  const i = s.indexOf(":");
  const algorithm = i > 0 ? s.slice(0, i) : "";
  const hex = s.slice(i + 1);
  const want = HEX_LENGTH[algorithm];
  if (!want) throw new ReferenceError(`invalid digest ${JSON.stringify(s)}: algorithm must be sha256 or sha512`, "digest");
  if (hex.length !== want || !/^[a-f0-9]+$/.test(hex)) throw new ReferenceError(`invalid digest ${JSON.stringify(s)}: ${algorithm} takes ${want} lowercase hex digits`, "digest");
  return { algorithm: algorithm as ParsedDigest["algorithm"], hex };
}

export function isDigest(s: string): boolean {
  try {
    parseDigest(s);
    return true;
  } catch {
    return false;
  }
}
