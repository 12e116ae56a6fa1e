/**
 * Normalises a tar entry name to a path relative to the image root: no leading `/` or `./`, no empty,
 * `.` or `..` components, no trailing `/`. Returns undefined for names that would escape the root (path
 * traversal) or that are empty: such entries are ignored, never written anywhere.
 */
export function normalizeEntryPath(name: string): string | undefined {
  // Fast path: the common case has no `.` components, no doubled or leading slashes.
  let s = name;
  while (s.startsWith("./")) s = s.slice(2);
  if (s.startsWith("/")) s = s.replace(/^\/+/, "");
  if (s.endsWith("/")) s = s.replace(/\/+$/, "");
  if (s === "" || s === ".") return undefined;
  if (!s.includes("//") && !/(^|\/)\.\.?(\/|$)/.test(s)) return s;
  const out: string[] = [];
  for (const part of s.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length === 0) return undefined;
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out.length ? out.join("/") : undefined;
}

/** Resolves a link target written in `linkPath`'s layer to an image-root path, or undefined if it escapes. */
export function resolveLinkTarget(linkPath: string, target: string): string | undefined {
  if (target.startsWith("/")) return normalizeEntryPath(target);
  const slash = linkPath.lastIndexOf("/");
  const dir = slash < 0 ? "" : linkPath.slice(0, slash);
  // Relative targets may climb above the link's directory; clamp at the root like the kernel does for
  // paths inside a chroot (`/..` is `/`).
  const parts = dir ? dir.split("/") : [];
  for (const part of target.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return parts.length ? parts.join("/") : undefined;
}

export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_WHITEOUT = ".wh..wh..opq";
