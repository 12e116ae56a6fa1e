import { LayerError } from "../errors.js";

/** A table of contents that cannot be trusted or read, or a partial read that could not finish: the layer is read in full instead. */
export class TocError extends LayerError {
  constructor(layer: string, message: string, options?: { cause?: unknown }) {
    super("BAD_TOC", layer, message, options);
  }
}
