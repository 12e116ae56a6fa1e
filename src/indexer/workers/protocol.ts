// What a pool and its worker processes say to each other. Control messages go over Node's IPC channel
// (advanced serialization, so byte arrays travel as bytes); a layer's blob goes over a second pipe (the
// worker's fd 4) in frames, so a gigabyte layer is not a gigabyte of IPC messages:
//   [kind: u8][stream: u32 BE][length: u32 BE][payload]
// kind DATA carries blob bytes, END closes the stream, ABORT closes it with an error (payload: WireError as
// JSON). `stream` numbers each open() of a worker, so frames of a stream the worker gave up on are dropped.
import type { LayerDescriptor } from "../../model/image.js";
import type { WalkLimits } from "../../layers/walk.js";
import type { LayerScanTuning, ScannedLayer } from "../scan-layer.js";

export const FRAME_DATA = 1;
export const FRAME_END = 2;
export const FRAME_ABORT = 3;
export const FRAME_HEADER = 9;
/** The largest DATA frame a pool writes. */
export const FRAME_MAX = 256 * 1024;

/** An error as it crosses the process boundary: enough for callers to branch on (`code`) and to name the layer. */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  layer?: string;
}

export function toWire(e: unknown): WireError {
  const err = e instanceof Error ? e : new Error(String(e));
  const code = (err as { code?: unknown }).code;
  const layer = (err as { layer?: unknown }).layer;
  return { name: err.name, message: err.message, ...(typeof code === "string" ? { code } : {}), ...(typeof layer === "string" ? { layer } : {}) };
}

export function fromWire(w: WireError): Error {
  const e = new Error(w.message);
  e.name = w.name;
  return Object.assign(e, w.code ? { code: w.code } : {}, w.layer ? { layer: w.layer } : {});
}

/** The tuning a worker runs with (its log goes back as messages). */
export type WorkerTuning = Omit<LayerScanTuning, "log">;

export type ToWorker =
  | { t: "init"; tuning: WorkerTuning }
  /** `limits`: this layer's, over the worker's tuning (its share of the scan's capture budget). */
  | { t: "scan"; job: number; layer: LayerDescriptor; scanners: string[]; verifiesDigests: boolean; ranges: boolean; limits?: Partial<WalkLimits> }
  | { t: "range"; req: number; data?: Uint8Array; error?: WireError };

export type FromWorker =
  | { t: "ready"; scanners: string[] }
  | { t: "open"; job: number; stream: number }
  /** The worker needs no more of this stream (its walk ended or failed before the blob did). */
  | { t: "close"; stream: number }
  | { t: "range"; job: number; req: number; start: number; end: number }
  | { t: "log"; level: "info" | "warn"; msg: string; fields?: Record<string, unknown> }
  | { t: "done"; job: number; result: ScannedLayer }
  | { t: "failed"; job: number; error: WireError };
