// Test helpers for the indexer: layers served from memory (the registry's part is tested elsewhere).
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { LayerSource } from "./scan-layer.js";
import type { LayerDescriptor } from "../model/image.js";

/** Blobs by digest; records every layer opened, in order. `delayMs` holds each open that long (to make indexes overlap). */
export class MemorySource implements LayerSource {
  readonly verifiesDigests = false;
  readonly opened: string[] = [];
  constructor(
    private readonly blobs: Map<string, Buffer>,
    private readonly delayMs = 0,
  ) {}
  async open(l: LayerDescriptor): Promise<Readable> {
    this.opened.push(l.digest);
    const b = this.blobs.get(l.digest);
    if (!b) throw new Error(`no blob ${l.digest}`);
    if (this.delayMs) await sleep(this.delayMs);
    return Readable.from([b]);
  }
}
