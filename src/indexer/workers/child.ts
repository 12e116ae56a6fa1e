// A worker process: parses the layer bytes its pool streams to it and sends back its scanners' results.
// It holds no registry credentials, no database connection and opens no socket: every byte comes from the
// pool (fd 4 for blobs, IPC for byte ranges), every result goes back over IPC. It runs one layer at a time;
// the pool kills it when it exceeds its memory or its scan's deadline, and starts another.
import { Socket } from "node:net";
import { Readable } from "node:stream";
import { defaultScanners } from "../../scanners/index.js";
import type { Scanner } from "../../model/scanner.js";
import { scanLayerBytes, type LayerSource } from "../scan-layer.js";
import { FRAME_ABORT, FRAME_DATA, FRAME_END, FRAME_HEADER, fromWire, toWire, type FromWorker, type ToWorker, type WireError, type WorkerTuning } from "./protocol.js";

if (!process.send) {
  process.stderr.write("portcullis indexer worker: start me through the worker pool (no IPC channel)\n");
  process.exit(2);
}

const send = (m: FromWorker): void => {
  process.send!(m);
};
const scanners = new Map<string, Scanner>(defaultScanners().map((s) => [s.name, s]));
let tuning: WorkerTuning = {};

// ----- blobs from fd 4
const data = new Socket({ fd: 4, readable: true, writable: false });
let pending: Buffer = Buffer.alloc(0);
let streamSeq = 0;
/** The stream open() returned last, while it takes frames. */
let current: { id: number; readable: Readable; started: boolean; settle?: (e?: Error) => void } | undefined;

data.on("data", (chunk: Buffer) => {
  pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  while (pending.length >= FRAME_HEADER) {
    const kind = pending[0]!;
    const stream = pending.readUInt32BE(1);
    const len = pending.readUInt32BE(5);
    if (pending.length < FRAME_HEADER + len) break;
    const payload = pending.subarray(FRAME_HEADER, FRAME_HEADER + len);
    pending = pending.subarray(FRAME_HEADER + len);
    frame(kind, stream, payload);
  }
});

function frame(kind: number, stream: number, payload: Buffer): void {
  const c = current;
  if (!c || c.id !== stream) return; // a stream this worker gave up on
  if (!c.started) {
    c.started = true;
    c.settle?.(kind === FRAME_ABORT ? fromWire(JSON.parse(payload.toString("utf8")) as WireError) : undefined);
    if (kind === FRAME_ABORT) {
      current = undefined;
      return;
    }
  }
  if (kind === FRAME_DATA) {
    // Copy: `payload` is a view of a buffer the next chunk may be concatenated from.
    if (!c.readable.push(Buffer.from(payload))) data.pause();
  } else if (kind === FRAME_END) {
    current = undefined;
    c.readable.push(null);
  } else if (kind === FRAME_ABORT) {
    current = undefined;
    c.readable.destroy(fromWire(JSON.parse(payload.toString("utf8")) as WireError));
  }
}

// ----- jobs
let job: number | undefined;
let rangeSeq = 0;
const ranges = new Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void }>();

function source(id: number, verifiesDigests: boolean, withRanges: boolean): LayerSource {
  return {
    verifiesDigests,
    open: () => new Promise<Readable>((resolve, reject) => {
      const streamId = ++streamSeq;
      const readable = new Readable({
        highWaterMark: 1 << 20,
        read: () => data.resume(),
        destroy: (err, cb) => {
          if (current?.id === streamId) {
            current = undefined;
            send({ t: "close", stream: streamId });
            data.resume();
          }
          cb(err);
        },
      });
      current = { id: streamId, readable, started: false, settle: (e) => (e ? reject(e) : resolve(readable)) };
      send({ t: "open", job: id, stream: streamId });
    }),
    ...(withRanges ? { ranges: () => ({
      read: (start: number, end: number) => new Promise<Buffer>((resolve, reject) => {
        const req = ++rangeSeq;
        ranges.set(req, { resolve, reject });
        send({ t: "range", job: id, req, start, end });
      }),
    }) } : {}),
  };
}

async function scan(m: Extract<ToWorker, { t: "scan" }>): Promise<void> {
  job = m.job;
  try {
    const wanted = m.scanners.map((n) => {
      const s = scanners.get(n);
      if (!s) throw new Error(`this worker has no scanner named ${n}`);
      return s;
    });
    const result = await scanLayerBytes(
      { layer: m.layer, scanners: wanted, source: source(m.job, m.verifiesDigests, m.ranges), signal: new AbortController().signal },
      { ...tuning, limits: { ...tuning.limits, ...m.limits }, log: (level, msg, fields) => send({ t: "log", level, msg, ...(fields ? { fields } : {}) }) },
    );
    send({ t: "done", job: m.job, result });
  } catch (e) {
    send({ t: "failed", job: m.job, error: toWire(e) });
  } finally {
    job = undefined;
    current?.readable.destroy();
    // A stream whose buffer filled paused the pipe until its reader asks for more; a scan that ends without
    // reading its stream to the end (the walk refused the layer, or stopped at the tar's end) never asks, and
    // the next scan's frames would wait behind the pause for ever (seen: a worker idle, its job stuck).
    data.resume();
    for (const r of ranges.values()) r.reject(new Error("the scan ended"));
    ranges.clear();
  }
}

process.on("message", (m: ToWorker) => {
  switch (m.t) {
    case "init":
      tuning = m.tuning;
      send({ t: "ready", scanners: [...scanners.keys()] });
      break;
    case "scan":
      if (job !== undefined) {
        send({ t: "failed", job: m.job, error: { name: "Error", message: "worker busy" } });
        return;
      }
      void scan(m);
      break;
    case "range": {
      const r = ranges.get(m.req);
      if (!r) return;
      ranges.delete(m.req);
      if (m.error) r.reject(fromWire(m.error));
      else r.resolve(Buffer.from(m.data!.buffer, m.data!.byteOffset, m.data!.byteLength));
      break;
    }
  }
});
// The pool going away (its process died) ends this one too.
process.on("disconnect", () => process.exit(0));
