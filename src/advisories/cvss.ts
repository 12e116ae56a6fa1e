// CVSS vector validation and scoring for versions 2.0, 3.0, 3.1 and 4.0, written from FIRST's specification
// documents (https://www.first.org/cvss/): v2 "A Complete Guide to the CVSS Version 2.0" section 3.2 (equations),
// v3.0 and v3.1 "Specification Document" section 7 (formulas, Roundup in Appendix A of 3.1), v4.0 "Specification
// Document" section 8 (MacroVectors, EQ1-EQ6, interpolation by severity distance). The v4.0 MacroVector scores and
// highest-severity vectors are data from the specification, in ./cvss4-macrovectors.ts. Pure functions, no I/O.
//
// Vectors are validated strictly: a version prefix we know, every Base metric present, no unknown metric, no
// metric twice, no value outside the metric's set. v2 and v3.x metrics may come in any order (the v3.1
// specification says readers must accept any order); v4.0 metrics must come in the specification's order, as
// FIRST's reference calculator requires.

import { CVSS4_MACROVECTOR_SCORES, CVSS4_MAX_SEVERITY, CVSS4_MAX_VECTORS } from "./cvss4-macrovectors.js";
import type { Cvss, Severity } from "../model/advisory.js";
import { PortcullisError } from "../errors.js";

export type CvssVersion = Cvss["version"];

/** Longer than any valid vector (a v4.0 vector with every metric is about 180 characters). */
export const MAX_CVSS_VECTOR_LENGTH = 512;

export class CvssError extends PortcullisError {
  readonly domain = "advisory";
  override name = "CvssError";
  readonly code = "INVALID_CVSS";
  constructor(
    readonly vector: string,
    why: string,
  ) {
    super(`CVSS vector ${JSON.stringify(vector.length > 80 ? `${vector.slice(0, 80)}…` : vector)}: ${why}`);
  }
}

export interface CvssScores {
  version: CvssVersion;
  /** The Base score (v4.0: CVSS-B, the vector's Base metrics alone). */
  base: number;
  /** v2 and v3.x, when the vector has Temporal metrics. */
  temporal?: number;
  /** v2 and v3.x, when the vector has Environmental metrics. */
  environmental?: number;
  /**
   * The score the vector as written calls for: Environmental when it has Environmental metrics, else Temporal
   * when it has Temporal metrics, else Base. For v4.0 the one score of all its metrics (CVSS-B, -BT, -BE or -BTE).
   */
  score: number;
}

// --- vector parsing -------------------------------------------------------------------------------------------

/** Metric name → allowed values, in the specification's order. */
type MetricSet = ReadonlyArray<readonly [string, readonly string[]]>;

const V2_METRICS: MetricSet = [
  ["AV", ["L", "A", "N"]],
  ["AC", ["H", "M", "L"]],
  ["Au", ["M", "S", "N"]],
  ["C", ["N", "P", "C"]],
  ["I", ["N", "P", "C"]],
  ["A", ["N", "P", "C"]],
  ["E", ["U", "POC", "F", "H", "ND"]],
  ["RL", ["OF", "TF", "W", "U", "ND"]],
  ["RC", ["UC", "UR", "C", "ND"]],
  ["CDP", ["N", "L", "LM", "MH", "H", "ND"]],
  ["TD", ["N", "L", "M", "H", "ND"]],
  ["CR", ["L", "M", "H", "ND"]],
  ["IR", ["L", "M", "H", "ND"]],
  ["AR", ["L", "M", "H", "ND"]],
];
const V2_BASE = ["AV", "AC", "Au", "C", "I", "A"];
const V2_TEMPORAL = ["E", "RL", "RC"];
const V2_ENVIRONMENTAL = ["CDP", "TD", "CR", "IR", "AR"];

const V3_METRICS: MetricSet = [
  ["AV", ["N", "A", "L", "P"]],
  ["AC", ["L", "H"]],
  ["PR", ["N", "L", "H"]],
  ["UI", ["N", "R"]],
  ["S", ["U", "C"]],
  ["C", ["H", "L", "N"]],
  ["I", ["H", "L", "N"]],
  ["A", ["H", "L", "N"]],
  ["E", ["X", "H", "F", "P", "U"]],
  ["RL", ["X", "U", "W", "T", "O"]],
  ["RC", ["X", "C", "R", "U"]],
  ["CR", ["X", "H", "M", "L"]],
  ["IR", ["X", "H", "M", "L"]],
  ["AR", ["X", "H", "M", "L"]],
  ["MAV", ["X", "N", "A", "L", "P"]],
  ["MAC", ["X", "L", "H"]],
  ["MPR", ["X", "N", "L", "H"]],
  ["MUI", ["X", "N", "R"]],
  ["MS", ["X", "U", "C"]],
  ["MC", ["X", "H", "L", "N"]],
  ["MI", ["X", "H", "L", "N"]],
  ["MA", ["X", "H", "L", "N"]],
];
const V3_BASE = ["AV", "AC", "PR", "UI", "S", "C", "I", "A"];
const V3_TEMPORAL = ["E", "RL", "RC"];
const V3_ENVIRONMENTAL = ["CR", "IR", "AR", "MAV", "MAC", "MPR", "MUI", "MS", "MC", "MI", "MA"];

const V4_METRICS: MetricSet = [
  ["AV", ["N", "A", "L", "P"]],
  ["AC", ["L", "H"]],
  ["AT", ["N", "P"]],
  ["PR", ["N", "L", "H"]],
  ["UI", ["N", "P", "A"]],
  ["VC", ["H", "L", "N"]],
  ["VI", ["H", "L", "N"]],
  ["VA", ["H", "L", "N"]],
  ["SC", ["H", "L", "N"]],
  ["SI", ["H", "L", "N"]],
  ["SA", ["H", "L", "N"]],
  ["E", ["X", "A", "P", "U"]],
  ["CR", ["X", "H", "M", "L"]],
  ["IR", ["X", "H", "M", "L"]],
  ["AR", ["X", "H", "M", "L"]],
  ["MAV", ["X", "N", "A", "L", "P"]],
  ["MAC", ["X", "L", "H"]],
  ["MAT", ["X", "N", "P"]],
  ["MPR", ["X", "N", "L", "H"]],
  ["MUI", ["X", "N", "P", "A"]],
  ["MVC", ["X", "H", "L", "N"]],
  ["MVI", ["X", "H", "L", "N"]],
  ["MVA", ["X", "H", "L", "N"]],
  ["MSC", ["X", "H", "L", "N"]],
  ["MSI", ["X", "S", "H", "L", "N"]],
  ["MSA", ["X", "S", "H", "L", "N"]],
  ["S", ["X", "N", "P"]],
  ["AU", ["X", "N", "Y"]],
  ["R", ["X", "A", "U", "I"]],
  ["V", ["X", "D", "C"]],
  ["RE", ["X", "L", "M", "H"]],
  ["U", ["X", "Clear", "Green", "Amber", "Red"]],
];
const V4_BASE = ["AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA"];

export interface ParsedCvss {
  version: CvssVersion;
  /** The vector as given, trimmed. */
  vector: string;
  /** Metric → value, exactly as written (no defaults filled in). */
  metrics: ReadonlyMap<string, string>;
}

/** Validates a vector and returns its version and metrics. Throws CvssError. */
export function parseCvss(input: string): ParsedCvss {
  if (typeof input !== "string") throw new CvssError(String(input), "not a string");
  const vector = input.trim();
  if (vector.length === 0) throw new CvssError(vector, "empty");
  if (vector.length > MAX_CVSS_VECTOR_LENGTH) throw new CvssError(vector, `longer than ${MAX_CVSS_VECTOR_LENGTH} characters`);
  let version: CvssVersion;
  let body: string;
  let set: MetricSet;
  let required: readonly string[];
  let ordered = false;
  if (vector.startsWith("CVSS:")) {
    const slash = vector.indexOf("/");
    const prefix = slash < 0 ? vector : vector.slice(0, slash);
    body = slash < 0 ? "" : vector.slice(slash + 1);
    switch (prefix) {
      case "CVSS:3.0":
        version = "3.0";
        set = V3_METRICS;
        required = V3_BASE;
        break;
      case "CVSS:3.1":
        version = "3.1";
        set = V3_METRICS;
        required = V3_BASE;
        break;
      case "CVSS:4.0":
        version = "4.0";
        set = V4_METRICS;
        required = V4_BASE;
        ordered = true;
        break;
      default:
        throw new CvssError(vector, `unknown version prefix ${JSON.stringify(prefix.slice(0, 16))}`);
    }
  } else {
    // CVSS v2 vectors have no prefix (NVD, OSV's CVSS_V2).
    version = "2.0";
    body = vector;
    set = V2_METRICS;
    required = V2_BASE;
  }
  const metrics = parseMetrics(vector, body, set, required, ordered);
  return { version, vector, metrics };
}

function parseMetrics(
  vector: string,
  body: string,
  set: MetricSet,
  required: readonly string[],
  ordered: boolean,
): Map<string, string> {
  const index = new Map(set.map(([name], i) => [name, i] as const));
  const metrics = new Map<string, string>();
  let last = -1;
  for (const part of body.split("/")) {
    const colon = part.indexOf(":");
    if (colon <= 0 || colon !== part.lastIndexOf(":")) throw new CvssError(vector, `malformed metric ${JSON.stringify(part.slice(0, 16))}`);
    const name = part.slice(0, colon);
    const value = part.slice(colon + 1);
    const i = index.get(name);
    if (i === undefined) throw new CvssError(vector, `unknown metric ${JSON.stringify(name.slice(0, 16))}`);
    if (metrics.has(name)) throw new CvssError(vector, `metric ${name} given twice`);
    const allowed = set[i]?.[1] ?? [];
    if (!allowed.includes(value)) throw new CvssError(vector, `metric ${name} has no value ${JSON.stringify(value.slice(0, 16))}`);
    if (ordered && i < last) throw new CvssError(vector, `metric ${name} out of the specification's order`);
    last = i;
    metrics.set(name, value);
  }
  const missing = required.filter((m) => !metrics.has(m));
  if (missing.length > 0) throw new CvssError(vector, `Base metric${missing.length > 1 ? "s" : ""} ${missing.join(", ")} missing`);
  return metrics;
}

// --- scoring --------------------------------------------------------------------------------------------------

/** Scores a vector (see CvssScores). Throws CvssError for an invalid vector. */
export function cvssScores(vector: string): CvssScores {
  const parsed = parseCvss(vector);
  switch (parsed.version) {
    case "2.0":
      return scoreV2(parsed.metrics);
    case "3.0":
    case "3.1":
      return scoreV3(parsed.version, parsed.metrics);
    case "4.0":
      return scoreV4(parsed.metrics);
  }
}

/** The Base score of a vector. Throws CvssError for an invalid vector. */
export function cvssBaseScore(vector: string): number {
  return cvssScores(vector).base;
}

/** A Cvss for the model: version, the vector as given (trimmed) and its computed Base score. Throws CvssError. */
export function toCvss(vector: string, source?: string): Cvss {
  const parsed = parseCvss(vector);
  const scores = cvssScores(parsed.vector);
  return { version: parsed.version, vector: parsed.vector, score: scores.base, ...(source ? { source } : {}) };
}

/**
 * The CVSS v3 qualitative rating (specification section 5) as the model's Severity: 0.0 None → Negligible,
 * 0.1–3.9 Low, 4.0–6.9 Medium, 7.0–8.9 High, 9.0–10.0 Critical. Anything outside 0–10 → Unknown.
 */
export function severityFromCvss(score: number): Severity {
  if (typeof score !== "number" || !Number.isFinite(score) || score < 0 || score > 10) return "Unknown";
  if (score === 0) return "Negligible";
  if (score < 4) return "Low";
  if (score < 7) return "Medium";
  if (score < 9) return "High";
  return "Critical";
}

function weight(table: Readonly<Record<string, number>>, value: string | undefined, fallback: string): number {
  const w = table[value ?? fallback] ?? table[fallback];
  if (w === undefined) throw new Error(`cvss: no weight for ${value ?? fallback}`);
  return w;
}

// CVSS v2 (guide section 3.2).

const V2_W = {
  AV: { L: 0.395, A: 0.646, N: 1.0 },
  AC: { H: 0.35, M: 0.61, L: 0.71 },
  Au: { M: 0.45, S: 0.56, N: 0.704 },
  CIA: { N: 0.0, P: 0.275, C: 0.66 },
  E: { U: 0.85, POC: 0.9, F: 0.95, H: 1.0, ND: 1.0 },
  RL: { OF: 0.87, TF: 0.9, W: 0.95, U: 1.0, ND: 1.0 },
  RC: { UC: 0.9, UR: 0.95, C: 1.0, ND: 1.0 },
  CDP: { N: 0, L: 0.1, LM: 0.3, MH: 0.4, H: 0.5, ND: 0 },
  TD: { N: 0, L: 0.25, M: 0.75, H: 1.0, ND: 1.0 },
  REQ: { L: 0.5, M: 1.0, H: 1.51, ND: 1.0 },
} satisfies Record<string, Record<string, number>>;

/** round_to_1_decimal, half up, after dropping binary noise below 12 significant digits. */
function round1(x: number): number {
  return Math.round(Number((x * 10).toPrecision(12))) / 10 + 0;
}

function scoreV2(m: ReadonlyMap<string, string>): CvssScores {
  const c = weight(V2_W.CIA, m.get("C"), "N");
  const i = weight(V2_W.CIA, m.get("I"), "N");
  const a = weight(V2_W.CIA, m.get("A"), "N");
  const exploitability = 20 * weight(V2_W.AV, m.get("AV"), "N") * weight(V2_W.AC, m.get("AC"), "L") * weight(V2_W.Au, m.get("Au"), "N");
  const baseOf = (impact: number) => round1((0.6 * impact + 0.4 * exploitability - 1.5) * (impact === 0 ? 0 : 1.176));
  const impact = 10.41 * (1 - (1 - c) * (1 - i) * (1 - a));
  const base = baseOf(impact);
  const t = weight(V2_W.E, m.get("E"), "ND") * weight(V2_W.RL, m.get("RL"), "ND") * weight(V2_W.RC, m.get("RC"), "ND");
  const out: CvssScores = { version: "2.0", base, score: base };
  if (V2_TEMPORAL.some((k) => m.has(k))) {
    out.temporal = round1(base * t);
    out.score = out.temporal;
  }
  if (V2_ENVIRONMENTAL.some((k) => m.has(k))) {
    const cr = weight(V2_W.REQ, m.get("CR"), "ND");
    const ir = weight(V2_W.REQ, m.get("IR"), "ND");
    const ar = weight(V2_W.REQ, m.get("AR"), "ND");
    const adjustedImpact = Math.min(10, 10.41 * (1 - (1 - c * cr) * (1 - i * ir) * (1 - a * ar)));
    const adjustedTemporal = round1(baseOf(adjustedImpact) * t);
    const cdp = weight(V2_W.CDP, m.get("CDP"), "ND");
    const td = weight(V2_W.TD, m.get("TD"), "ND");
    out.environmental = round1((adjustedTemporal + (10 - adjustedTemporal) * cdp) * td);
    out.score = out.environmental;
  }
  return out;
}

// CVSS v3.0 and v3.1 (specification section 7).

const V3_W = {
  AV: { N: 0.85, A: 0.62, L: 0.55, P: 0.2 },
  AC: { L: 0.77, H: 0.44 },
  PR_U: { N: 0.85, L: 0.62, H: 0.27 },
  PR_C: { N: 0.85, L: 0.68, H: 0.5 },
  UI: { N: 0.85, R: 0.62 },
  CIA: { H: 0.56, L: 0.22, N: 0 },
  E: { X: 1, H: 1, F: 0.97, P: 0.94, U: 0.91 },
  RL: { X: 1, U: 1, W: 0.97, T: 0.96, O: 0.95 },
  RC: { X: 1, C: 1, R: 0.96, U: 0.92 },
  REQ: { X: 1, H: 1.5, M: 1, L: 0.5 },
} satisfies Record<string, Record<string, number>>;

/**
 * Roundup as defined in CVSS v3.1 Appendix A: the smallest one-decimal number ≥ the input, computed on integers
 * so that binary noise (4.000000000000001) does not round up. v3.0 defines Roundup the same way mathematically;
 * the same function is used for it.
 */
export function roundUp(x: number): number {
  const i = Math.round(x * 100000);
  if (i % 10000 === 0) return i / 100000;
  return (Math.floor(i / 10000) + 1) / 10;
}

function scoreV3(version: "3.0" | "3.1", m: ReadonlyMap<string, string>): CvssScores {
  const scopeChanged = m.get("S") === "C";
  const c = weight(V3_W.CIA, m.get("C"), "N");
  const i = weight(V3_W.CIA, m.get("I"), "N");
  const a = weight(V3_W.CIA, m.get("A"), "N");
  const iss = 1 - (1 - c) * (1 - i) * (1 - a);
  const impact = scopeChanged ? 7.52 * (iss - 0.029) - 3.25 * Math.pow(iss - 0.02, 15) : 6.42 * iss;
  const exploitability =
    8.22 *
    weight(V3_W.AV, m.get("AV"), "N") *
    weight(V3_W.AC, m.get("AC"), "L") *
    weight(scopeChanged ? V3_W.PR_C : V3_W.PR_U, m.get("PR"), "N") *
    weight(V3_W.UI, m.get("UI"), "N");
  const base = impact <= 0 ? 0 : roundUp(Math.min((scopeChanged ? 1.08 : 1) * (impact + exploitability), 10));
  const t = weight(V3_W.E, m.get("E"), "X") * weight(V3_W.RL, m.get("RL"), "X") * weight(V3_W.RC, m.get("RC"), "X");
  const out: CvssScores = { version, base, score: base };
  if (V3_TEMPORAL.some((k) => m.has(k))) {
    out.temporal = roundUp(base * t);
    out.score = out.temporal;
  }
  if (V3_ENVIRONMENTAL.some((k) => m.has(k))) {
    // A Modified metric that is absent or X takes the Base metric's value.
    const mod = (name: string): string | undefined => {
      const v = m.get(`M${name}`);
      return v === undefined || v === "X" ? m.get(name) : v;
    };
    const mScopeChanged = mod("S") === "C";
    const mc = weight(V3_W.CIA, mod("C"), "N");
    const mi = weight(V3_W.CIA, mod("I"), "N");
    const ma = weight(V3_W.CIA, mod("A"), "N");
    const cr = weight(V3_W.REQ, m.get("CR"), "X");
    const ir = weight(V3_W.REQ, m.get("IR"), "X");
    const ar = weight(V3_W.REQ, m.get("AR"), "X");
    const miss = Math.min(1 - (1 - cr * mc) * (1 - ir * mi) * (1 - ar * ma), 0.915);
    let mImpact: number;
    if (!mScopeChanged) mImpact = 6.42 * miss;
    else if (version === "3.1") mImpact = 7.52 * (miss - 0.029) - 3.25 * Math.pow(miss * 0.9731 - 0.02, 13);
    else mImpact = 7.52 * (miss - 0.029) - 3.25 * Math.pow(miss - 0.02, 15);
    const mExploitability =
      8.22 *
      weight(V3_W.AV, mod("AV"), "N") *
      weight(V3_W.AC, mod("AC"), "L") *
      weight(mScopeChanged ? V3_W.PR_C : V3_W.PR_U, mod("PR"), "N") *
      weight(V3_W.UI, mod("UI"), "N");
    out.environmental =
      mImpact <= 0 ? 0 : roundUp(roundUp(Math.min((mScopeChanged ? 1.08 : 1) * (mImpact + mExploitability), 10)) * t);
    out.score = out.environmental;
  }
  return out;
}

// CVSS v4.0 (specification section 8).

/** Severity levels in steps of 0.1, as integers (0 = most severe) so that distances add up without binary noise. */
const V4_LEVELS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  AV: { N: 0, A: 1, L: 2, P: 3 },
  PR: { N: 0, L: 1, H: 2 },
  UI: { N: 0, P: 1, A: 2 },
  AC: { L: 0, H: 1 },
  AT: { N: 0, P: 1 },
  VC: { H: 0, L: 1, N: 2 },
  VI: { H: 0, L: 1, N: 2 },
  VA: { H: 0, L: 1, N: 2 },
  SC: { H: 1, L: 2, N: 3 },
  SI: { S: 0, H: 1, L: 2, N: 3 },
  SA: { S: 0, H: 1, L: 2, N: 3 },
  CR: { H: 0, M: 1, L: 2 },
  IR: { H: 0, M: 1, L: 2 },
  AR: { H: 0, M: 1, L: 2 },
};
const V4_DISTANCE_METRICS = ["AV", "PR", "UI", "AC", "AT", "VC", "VI", "VA", "SC", "SI", "SA", "CR", "IR", "AR"] as const;

/** The value a metric takes for scoring: Modified metrics override, E/CR/IR/AR "not defined" are their worst case. */
function v4Effective(m: ReadonlyMap<string, string>, name: string): string {
  const value = m.get(name) ?? "X";
  if (value === "X") {
    if (name === "E") return "A";
    if (name === "CR" || name === "IR" || name === "AR") return "H";
  }
  const modified = m.get(`M${name}`);
  if (modified !== undefined && modified !== "X") return modified;
  return value;
}

function v4MacroVector(m: ReadonlyMap<string, string>): [number, number, number, number, number, number] {
  const e = (name: string) => v4Effective(m, name);
  const av = e("AV");
  const pr = e("PR");
  const ui = e("UI");
  let eq1: number;
  if (av === "N" && pr === "N" && ui === "N") eq1 = 0;
  else if ((av === "N" || pr === "N" || ui === "N") && av !== "P") eq1 = 1;
  else eq1 = 2;
  const eq2 = e("AC") === "L" && e("AT") === "N" ? 0 : 1;
  const vc = e("VC");
  const vi = e("VI");
  const va = e("VA");
  let eq3: number;
  if (vc === "H" && vi === "H") eq3 = 0;
  else if (vc === "H" || vi === "H" || va === "H") eq3 = 1;
  else eq3 = 2;
  let eq4: number;
  if (m.get("MSI") === "S" || m.get("MSA") === "S") eq4 = 0;
  else if (e("SC") === "H" || e("SI") === "H" || e("SA") === "H") eq4 = 1;
  else eq4 = 2;
  const exploit = e("E");
  const eq5 = exploit === "A" ? 0 : exploit === "P" ? 1 : 2;
  const eq6 = (e("CR") === "H" && vc === "H") || (e("IR") === "H" && vi === "H") || (e("AR") === "H" && va === "H") ? 0 : 1;
  return [eq1, eq2, eq3, eq4, eq5, eq6];
}

function v4Lookup(eqs: readonly number[]): number | undefined {
  return CVSS4_MACROVECTOR_SCORES[eqs.join("")];
}

const maxVectorCache = new Map<string, ReadonlyMap<string, string>>();

function parseMaxVector(s: string): ReadonlyMap<string, string> {
  let m = maxVectorCache.get(s);
  if (!m) {
    m = new Map(s.split("/").map((p) => p.split(":") as [string, string]));
    maxVectorCache.set(s, m);
  }
  return m;
}

function v4Score(m: ReadonlyMap<string, string>): number {
  const e = (name: string) => v4Effective(m, name);
  if (["VC", "VI", "VA", "SC", "SI", "SA"].every((name) => e(name) === "N")) return 0;
  const eqs = v4MacroVector(m);
  const [eq1, eq2, eq3, eq4, eq5, eq6] = eqs;
  const value = v4Lookup(eqs);
  if (value === undefined) throw new Error(`cvss: no MacroVector score for ${eqs.join("")}`);

  // Step 1a: the score of the next lower MacroVector of each EQ (absent when there is none).
  const lower = (at: number, by = 1) => v4Lookup(eqs.map((v, i) => (i === at ? v + by : v)));
  const lowerEq1 = lower(0);
  const lowerEq2 = lower(1);
  let lowerEq3Eq6: number | undefined;
  if (eq3 === 0 && eq6 === 0) {
    // Two ways down (00 → 01 and 00 → 10): the higher of the two.
    const left = lower(5);
    const right = lower(2);
    lowerEq3Eq6 = left === undefined ? right : right === undefined ? left : Math.max(left, right);
  } else if (eq3 === 1 && eq6 === 0) {
    lowerEq3Eq6 = lower(5); // 10 → 11
  } else {
    lowerEq3Eq6 = lower(2); // 01 → 11, 11 → 21; 21 has none
  }
  const lowerEq4 = lower(3);
  const lowerEq5 = lower(4);

  // Step 1b: the first highest-severity vector of this MacroVector that the vector does not exceed anywhere.
  const maxVectors: string[] = [];
  const eq3eq6Max = CVSS4_MAX_VECTORS.eq3eq6[String(eq3) as "0" | "1" | "2"] as Readonly<Record<string, readonly string[]>>;
  for (const a of CVSS4_MAX_VECTORS.eq1[eq1 as 0 | 1 | 2])
    for (const b of CVSS4_MAX_VECTORS.eq2[eq2 as 0 | 1])
      for (const c of eq3eq6Max[String(eq6)] ?? [])
        for (const d of CVSS4_MAX_VECTORS.eq4[eq4 as 0 | 1 | 2])
          for (const f of CVSS4_MAX_VECTORS.eq5[eq5 as 0 | 1 | 2]) maxVectors.push(`${a}/${b}/${c}/${d}/${f}`);
  let distance: Record<string, number> | undefined;
  for (const candidate of maxVectors) {
    const max = parseMaxVector(candidate);
    const d: Record<string, number> = {};
    let dominated = true;
    for (const name of V4_DISTANCE_METRICS) {
      const levels = V4_LEVELS[name] ?? {};
      const own = levels[e(name)];
      const top = levels[max.get(name) ?? ""];
      if (own === undefined || top === undefined) throw new Error(`cvss: no severity level for ${name}`);
      d[name] = own - top;
      if (d[name] < 0) dominated = false;
    }
    if (dominated) {
      distance = d;
      break;
    }
  }
  if (!distance) throw new Error(`cvss: no highest-severity vector covers MacroVector ${eqs.join("")}`);
  const dist = (...names: string[]) => names.reduce((sum, n) => sum + (distance?.[n] ?? 0), 0);

  // Steps 1c-1d and 2: the proportional distance per EQ, averaged over the EQs that have a lower MacroVector.
  const depth3 = (CVSS4_MAX_SEVERITY.eq3eq6[String(eq3) as "0" | "1" | "2"] as Readonly<Record<string, number>>)[String(eq6)];
  const parts: Array<[number | undefined, number, number | undefined]> = [
    [lowerEq1, dist("AV", "PR", "UI"), CVSS4_MAX_SEVERITY.eq1[eq1]],
    [lowerEq2, dist("AC", "AT"), CVSS4_MAX_SEVERITY.eq2[eq2]],
    [lowerEq3Eq6, dist("VC", "VI", "VA", "CR", "IR", "AR"), depth3],
    [lowerEq4, dist("SC", "SI", "SA"), CVSS4_MAX_SEVERITY.eq4[eq4]],
    [lowerEq5, 0, 1], // EQ5 (E) has no distance within its MacroVector
  ];
  let n = 0;
  let sum = 0;
  for (const [lowerScore, d, depth] of parts) {
    if (lowerScore === undefined) continue;
    if (depth === undefined) throw new Error("cvss: no MacroVector depth");
    n += 1;
    sum += (value - lowerScore) * (d / depth);
  }
  const mean = n === 0 ? 0 : sum / n;
  // Step 3: clamp, then round half up; the reference calculator adds 1e-6 so that x.x5 minus binary noise rounds up.
  const score = Math.min(10, Math.max(0, value - mean));
  return Math.round((score + 1e-6) * 10) / 10;
}

function scoreV4(m: ReadonlyMap<string, string>): CvssScores {
  const baseOnly = new Map([...m].filter(([name]) => V4_BASE.includes(name)));
  const score = v4Score(m);
  return { version: "4.0", base: baseOnly.size === m.size ? score : v4Score(baseOnly), score };
}
