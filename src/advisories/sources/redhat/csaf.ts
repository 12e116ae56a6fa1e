// One Red Hat CSAF 2.0 VEX document → one Advisory per vulnerability (Red Hat writes exactly one, the CVE).
// Product ids in `product_status` are resolved through `product_tree.relationships` to (platform product
// with a CPE, component product with a purl); a component may itself be a component of a module, which is
// a component of the platform. docs/advisories.md ("Red Hat") has the mapping.

import { z } from "zod";
import type { AdvisoryReference, AffectedPackage, AffectedRange, Cvss, FixState, RawFile, Severity, Advisory } from "../../../model/advisory.js";
import {
  AdvisoryInputError,
  LIMITS,
  SIZE_CAPS,
  byNatural,
  byString,
  clip,
  higherSeverity,
  isRecord,
  kindOf,
  own,
  readTopRecord,
  zodReason,
  type SkipLog,
} from "../../input.js";
import { ecosystemFromCpe, evr, moduleStream, parseCpe, parseNevra, parsePurl, validRpmName } from "./identifiers.js";

const ProductId = z.string().min(1).max(1024);
const Ids = z.array(ProductId).optional();

const Product = z.object({
  product_id: ProductId,
  name: z.string().max(4096).optional(),
  product_identification_helper: z
    .object({ cpe: z.string().max(1024).optional(), purl: z.string().max(4096).optional() })
    .optional(),
});
type Product = z.infer<typeof Product>;

const Relationship = z.object({
  category: z.string().max(64),
  product_reference: ProductId,
  relates_to_product_reference: ProductId,
  full_product_name: Product,
});

const Group = z.object({ group_id: ProductId, product_ids: z.array(ProductId) });

const Remediation = z.object({
  category: z.string().max(64),
  details: z.string().optional(),
  url: z.string().max(2048).optional(),
  date: z.string().max(64).optional(),
  product_ids: Ids,
  group_ids: Ids,
});

const Threat = z.object({ category: z.string().max(64), details: z.string().max(4096).optional(), product_ids: Ids, group_ids: Ids });
const Flag = z.object({ label: z.string().max(128), product_ids: Ids, group_ids: Ids });
const CvssBlock = z.object({
  version: z.string().max(8).optional(),
  vectorString: z.string().max(512),
  baseScore: z.number().min(0).max(10).optional(),
});
const Score = z.object({ cvss_v3: CvssBlock.optional(), cvss_v2: CvssBlock.optional(), products: Ids });
const Note = z.object({ category: z.string().max(64), text: z.string(), title: z.string().max(1024).optional() });
const Reference = z.object({ category: z.string().max(64).optional(), summary: z.string().optional(), url: z.string().max(2048) });

/** The statuses read, in the order rows are built. `recommended` says which product to use, not a state. */
const STATUSES = [
  "fixed",
  "first_fixed",
  "known_affected",
  "first_affected",
  "last_affected",
  "known_not_affected",
  "under_investigation",
] as const;
type Status = (typeof STATUSES)[number];

const MAX_TREE_NODES = 1_000_000;
const MAX_TREE_DEPTH = 32;
const MAX_CHAIN = 4;

/** Red Hat impact → severity: Critical → Critical, Important → High, Moderate → Medium, Low → Low. */
export function impactSeverity(impact: string | undefined): Severity {
  switch (impact?.trim().toLowerCase()) {
    case "critical":
      return "Critical";
    case "important":
      return "High";
    case "moderate":
      return "Medium";
    case "low":
      return "Low";
    default:
      return "Unknown";
  }
}

interface Component {
  name: string;
  nameKind: "source" | "binary";
  evr?: string;
  module?: string;
}

interface Resolved {
  ecosystem: string;
  cpe: string;
  component: Component;
}

/** Skips of one document, grouped by reason so ten thousand container images are one line, not ten thousand. */
class GroupedSkips {
  private readonly byReason = new Map<string, string[]>();
  add(reason: string, productId: string): void {
    const ids = this.byReason.get(reason);
    if (ids) ids.push(productId);
    else this.byReason.set(reason, [productId]);
  }
  flush(file: string, prefix: string, skips: SkipLog): void {
    for (const [reason, ids] of this.byReason) {
      const shown = ids.slice(0, 3).join(", ") + (ids.length > 3 ? ` (+${ids.length - 3} more)` : "");
      skips.add(file, `${prefix}: ${shown}`, ids.length > 1 ? `${reason} (${ids.length} product entries)` : reason);
    }
  }
}

class ProductTree {
  readonly products = new Map<string, Product>();
  readonly relationships = new Map<string, z.infer<typeof Relationship>>();
  readonly groups = new Map<string, string[]>();

  constructor(tree: unknown, file: string, skips: SkipLog) {
    if (!isRecord(tree)) {
      skips.add(file, "product_tree", `product_tree is ${kindOf(tree)}, expected an object`);
      return;
    }
    // Branches, walked with an explicit stack: bounded depth and node count, no recursion.
    const stack: Array<{ node: unknown; depth: number; at: string }> = [];
    const branches = own(tree, "branches");
    if (Array.isArray(branches)) branches.forEach((b, i) => stack.push({ node: b, depth: 1, at: `branches[${i}]` }));
    let seen = 0;
    while (stack.length > 0) {
      const { node, depth, at } = stack.pop() as { node: unknown; depth: number; at: string };
      if (++seen > MAX_TREE_NODES) throw new AdvisoryInputError("BAD_SHAPE", file, `product_tree has more than ${MAX_TREE_NODES} branches`, { naming: "path" });
      if (!isRecord(node)) {
        skips.add(file, `product_tree.${at}`, `branch is ${kindOf(node)}, expected an object`);
        continue;
      }
      const product = own(node, "product");
      if (product !== undefined) this.addProduct(product, `product_tree.${at}.product`, file, skips);
      const children = own(node, "branches");
      if (Array.isArray(children)) {
        if (depth >= MAX_TREE_DEPTH) {
          skips.add(file, `product_tree.${at}`, `branches nested deeper than ${MAX_TREE_DEPTH} levels`);
          continue;
        }
        children.forEach((b, i) => stack.push({ node: b, depth: depth + 1, at: `${at}.branches[${i}]` }));
      }
    }
    const full = own(tree, "full_product_names");
    if (Array.isArray(full)) full.forEach((p, i) => this.addProduct(p, `product_tree.full_product_names[${i}]`, file, skips));
    const rels = own(tree, "relationships");
    if (Array.isArray(rels)) {
      rels.forEach((r, i) => {
        const rel = Relationship.safeParse(r);
        if (!rel.success) {
          skips.add(file, `product_tree.relationships[${i}]`, zodReason(rel.error));
          return;
        }
        this.relationships.set(rel.data.full_product_name.product_id, rel.data);
        // The relationship's own product may carry identification helpers too.
        if (!this.products.has(rel.data.full_product_name.product_id)) {
          this.products.set(rel.data.full_product_name.product_id, rel.data.full_product_name);
        }
      });
    }
    const groups = own(tree, "product_groups");
    if (Array.isArray(groups)) {
      groups.forEach((g, i) => {
        const group = Group.safeParse(g);
        if (!group.success) skips.add(file, `product_tree.product_groups[${i}]`, zodReason(group.error));
        else this.groups.set(group.data.group_id, group.data.product_ids);
      });
    }
  }

  private addProduct(raw: unknown, at: string, file: string, skips: SkipLog): void {
    const p = Product.safeParse(raw);
    if (!p.success) skips.add(file, at, zodReason(p.error));
    else this.products.set(p.data.product_id, p.data);
  }

  /** product_ids plus the members of group_ids. */
  expand(productIds: string[] | undefined, groupIds: string[] | undefined): string[] {
    const out = [...(productIds ?? [])];
    for (const g of groupIds ?? []) out.push(...(this.groups.get(g) ?? []));
    return out;
  }

  /**
   * A product id → (ecosystem, CPE, component), following `relates_to_product_reference` through at most
   * a few relationships (component → module → platform).
   */
  resolve(productId: string): Resolved | { skip: string } {
    const rel = this.relationships.get(productId);
    if (!rel) {
      const p = this.products.get(productId);
      if (!p) return { skip: "product id not in the product tree" };
      return { skip: "a product without a platform relationship (no component of a CPE-named product)" };
    }
    if (rel.category !== "default_component_of" && rel.category !== "optional_component_of") {
      return { skip: `relationship category ${JSON.stringify(clip(rel.category, 40))} is not a component of a platform` };
    }
    const component = this.component(rel.product_reference);
    if ("skip" in component) return component;
    let target = rel.relates_to_product_reference;
    let module = component.module;
    for (let i = 0; i < MAX_CHAIN; i++) {
      const inner = this.relationships.get(target);
      if (!inner) break;
      const m = this.moduleOf(inner.product_reference);
      if (m !== undefined) module ??= m;
      target = inner.relates_to_product_reference;
    }
    const platform = this.products.get(target);
    const cpeText = platform?.product_identification_helper?.cpe;
    if (cpeText === undefined) return { skip: "platform product without a CPE" };
    const cpe = parseCpe(cpeText);
    if (!cpe) return { skip: `unreadable platform CPE ${JSON.stringify(clip(cpeText, 80))}` };
    const eco = ecosystemFromCpe(cpe);
    if ("skip" in eco) return eco;
    const out: Component = { ...component };
    if (module !== undefined) out.module = module;
    return { ecosystem: eco.ecosystem, cpe: cpeText, component: out };
  }

  /** The module stream a module product stands for (`pkg:rpmmod/redhat/ruby@3.3:9040020240906110954:9` → ruby:3.3). */
  private moduleOf(productId: string): string | undefined {
    const purlText = this.products.get(productId)?.product_identification_helper?.purl;
    const purl = purlText === undefined ? undefined : parsePurl(purlText);
    if (purl?.type !== "rpmmod" || purl.version === undefined) return undefined;
    return moduleStream(`${purl.name}:${purl.version}`);
  }

  private component(productId: string): Component | { skip: string } {
    const p = this.products.get(productId);
    const purlText = p?.product_identification_helper?.purl;
    if (purlText !== undefined) {
      const purl = parsePurl(purlText);
      if (!purl) return { skip: `unreadable purl ${JSON.stringify(clip(purlText, 80))}` };
      if (purl.type === "rpm") {
        if (!validRpmName(purl.name)) return { skip: "unusable RPM name" };
        const arch = purl.qualifiers.get("arch");
        const out: Component = { name: purl.name, nameKind: arch === "src" ? "source" : "binary" };
        if (purl.version !== undefined) {
          if (purl.version.length > LIMITS.version) return { skip: "RPM version longer than 256 characters" };
          out.evr = evr(purl.qualifiers.get("epoch"), purl.version);
        }
        const rpmmod = purl.qualifiers.get("rpmmod");
        if (rpmmod !== undefined) {
          const m = moduleStream(rpmmod);
          if (m === undefined) return { skip: `unreadable rpmmod ${JSON.stringify(clip(rpmmod, 80))}` };
          out.module = m;
        }
        return out;
      }
      if (purl.type === "rpmmod") {
        // pkg:rpmmod/redhat/ruby:2.6/ruby is the RPM ruby in the module ruby:2.6; pkg:rpmmod/redhat/ruby@2.6:…
        // is the module itself, which names no RPM.
        const inModule = purl.namespace[1];
        if (purl.namespace.length === 2 && inModule !== undefined) {
          const m = moduleStream(inModule);
          if (m === undefined || !validRpmName(purl.name)) return { skip: "unreadable module package purl" };
          return { name: purl.name, nameKind: "source", module: m };
        }
        return { skip: "module-level entry (names a module stream, no RPM)" };
      }
      return { skip: `not an RPM (purl type ${JSON.stringify(clip(purl.type, 20))})` };
    }
    // No purl: a NEVRA product id (fixed builds), else an unversioned source package name.
    const nevra = parseNevra(productId);
    if (nevra && validRpmName(nevra.name)) {
      return {
        name: nevra.name,
        nameKind: nevra.arch === "src" ? "source" : "binary",
        evr: evr(nevra.epoch, `${nevra.version}-${nevra.release}`),
      };
    }
    if (validRpmName(productId)) return { name: productId, nameKind: "source" };
    return { skip: "component with neither a purl nor an RPM name" };
  }
}

interface RowAcc {
  row: AffectedPackage;
  cpes: Set<string>;
  advisories: Set<string>;
  flags: Set<string>;
  remediation: Set<string>;
  impacts: string[];
}

const RHSA = /\b(RH[SBE]A-\d{4}:\d{1,6})\b/;

/** Reads one VEX document. Throws for an unreadable file; skips what cannot be used. */
export function readVexDocument(file: RawFile, skips: SkipLog): { advisories: Advisory[]; modified?: string } {
  const path = file.path;
  const doc = readTopRecord(file, SIZE_CAPS.other, "a CSAF document");
  const document = own(doc, "document");
  if (!isRecord(document)) {
    skips.add(path, "document", `document is ${kindOf(document)}, expected an object`);
    return { advisories: [] };
  }
  const category = own(document, "category");
  if (category !== "csaf_vex") {
    skips.add(path, "document.category", `category is ${typeof category === "string" ? JSON.stringify(clip(category, 60)) : kindOf(category)}, not csaf_vex`);
    return { advisories: [] };
  }
  const tracking = own(document, "tracking");
  const modified = isRecord(tracking) ? stringOr(own(tracking, "current_release_date")) : undefined;
  const initial = isRecord(tracking) ? stringOr(own(tracking, "initial_release_date")) : undefined;
  const aggregate = own(document, "aggregate_severity");
  const aggregateText = isRecord(aggregate) ? stringOr(own(aggregate, "text")) : undefined;
  const docRefs = parseList(own(document, "references"), Reference, path, "document.references", skips);
  const tree = new ProductTree(own(doc, "product_tree"), path, skips);

  const vulns = own(doc, "vulnerabilities");
  if (!Array.isArray(vulns)) {
    skips.add(path, "vulnerabilities", `vulnerabilities is ${kindOf(vulns)}, expected a list`);
    return { advisories: [] };
  }
  const advisories: Advisory[] = [];
  vulns.forEach((v, i) => {
    const at = `vulnerabilities[${i}]`;
    if (!isRecord(v)) {
      skips.add(path, at, `vulnerability is ${kindOf(v)}, expected an object`);
      return;
    }
    const cve = own(v, "cve");
    if (typeof cve !== "string" || cve.length > LIMITS.id || !/^CVE-\d{4}-\d{4,}$/.test(cve)) {
      skips.add(path, at, `cve is ${typeof cve === "string" ? JSON.stringify(clip(cve, 60)) : kindOf(cve)}, expected a CVE id`);
      return;
    }
    const a = vulnerability(v, cve, { path, tree, skips, modified, initial, aggregateText, docRefs });
    if (a) advisories.push(a);
  });
  const out: { advisories: Advisory[]; modified?: string } = { advisories };
  if (modified !== undefined) out.modified = modified;
  return out;
}

interface Context {
  path: string;
  tree: ProductTree;
  skips: SkipLog;
  modified: string | undefined;
  initial: string | undefined;
  aggregateText: string | undefined;
  docRefs: Array<z.infer<typeof Reference>>;
}

function vulnerability(v: Record<string, unknown>, cve: string, ctx: Context): Advisory | undefined {
  const { path, tree, skips } = ctx;
  const rec = (what: string) => `${cve} ${what}`;
  const grouped = new GroupedSkips();

  const remediations = new Map<string, Array<z.infer<typeof Remediation>>>();
  for (const r of parseList(own(v, "remediations"), Remediation, path, rec("remediations"), skips)) {
    for (const pid of tree.expand(r.product_ids, r.group_ids)) {
      const list = remediations.get(pid);
      if (list) list.push(r);
      else remediations.set(pid, [r]);
    }
  }
  const flags = new Map<string, string[]>();
  for (const f of parseList(own(v, "flags"), Flag, path, rec("flags"), skips)) {
    for (const pid of tree.expand(f.product_ids, f.group_ids)) flags.set(pid, [...(flags.get(pid) ?? []), f.label]);
  }
  const impacts = new Map<string, string[]>();
  const defaultImpacts: string[] = [];
  for (const t of parseList(own(v, "threats"), Threat, path, rec("threats"), skips)) {
    if (t.category !== "impact" || t.details === undefined) continue;
    const pids = tree.expand(t.product_ids, t.group_ids);
    if (pids.length === 0) defaultImpacts.push(t.details);
    for (const pid of pids) impacts.set(pid, [...(impacts.get(pid) ?? []), t.details]);
  }
  const cvss: Cvss[] = [];
  for (const s of parseList(own(v, "scores"), Score, path, rec("scores"), skips)) {
    for (const [block, versionDefault] of [
      [s.cvss_v3, "3.1"],
      [s.cvss_v2, "2.0"],
    ] as const) {
      if (!block) continue;
      const version = cvssVersion(block.version ?? versionDefault, block.vectorString);
      if (version === undefined) {
        skips.add(path, rec("scores"), `unreadable CVSS vector ${JSON.stringify(clip(block.vectorString, 80))}`);
        continue;
      }
      if (cvss.some((c) => c.version === version && c.vector === block.vectorString)) continue;
      const c: Cvss = { version, vector: block.vectorString, source: "redhat" };
      if (block.baseScore !== undefined) c.score = block.baseScore;
      cvss.push(c);
    }
  }

  const productStatus = own(v, "product_status");
  const rows = new Map<string, RowAcc>();
  if (productStatus !== undefined && !isRecord(productStatus)) {
    skips.add(path, rec("product_status"), `product_status is ${kindOf(productStatus)}, expected an object`);
  }
  for (const status of STATUSES) {
    const list = isRecord(productStatus) ? own(productStatus, status) : undefined;
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      skips.add(path, rec(`product_status.${status}`), `${kindOf(list)}, expected a list of product ids`);
      continue;
    }
    for (const [i, pid] of list.entries()) {
      if (typeof pid !== "string" || pid.length === 0 || pid.length > 1024) {
        skips.add(path, rec(`product_status.${status}[${i}]`), `product id is ${kindOf(pid)}, expected a string of at most 1024 characters`);
        continue;
      }
      const resolved = tree.resolve(pid);
      if ("skip" in resolved) {
        grouped.add(resolved.skip, pid);
        continue;
      }
      const state = fixState(status, resolved.component, remediations.get(pid) ?? []);
      if ("skip" in state) {
        grouped.add(state.skip, pid);
        continue;
      }
      const { component } = resolved;
      const key = [resolved.ecosystem, component.name, component.nameKind, component.module ?? "", state.fixState].join("\u0000");
      let acc = rows.get(key);
      if (!acc) {
        const row: AffectedPackage = {
          ecosystem: resolved.ecosystem,
          name: component.name,
          nameKind: component.nameKind,
          fixState: state.fixState,
          fixedVersions: [],
          ranges: [],
        };
        if (component.module !== undefined) row.module = component.module;
        acc = { row, cpes: new Set(), advisories: new Set(), flags: new Set(), remediation: new Set(), impacts: [] };
        rows.set(key, acc);
      }
      acc.cpes.add(resolved.cpe);
      for (const range of state.ranges) {
        if (!acc.row.ranges.some((r) => JSON.stringify(r) === JSON.stringify(range))) acc.row.ranges.push(range);
      }
      if (state.fixed !== undefined && !acc.row.fixedVersions.includes(state.fixed)) acc.row.fixedVersions.push(state.fixed);
      for (const label of flags.get(pid) ?? []) acc.flags.add(label);
      acc.impacts.push(...(impacts.get(pid) ?? defaultImpacts));
      for (const r of remediations.get(pid) ?? []) {
        if (r.category === "vendor_fix") {
          const id = RHSA.exec(r.url ?? "")?.[1] ?? RHSA.exec(r.details ?? "")?.[1];
          if (id !== undefined) acc.advisories.add(id);
          if (state.fixed !== undefined && r.date !== undefined && (acc.row.fixAvailableAt === undefined || r.date < acc.row.fixAvailableAt)) {
            acc.row.fixAvailableAt = r.date;
          }
        } else if (r.details !== undefined && r.details.trim() !== "") {
          acc.remediation.add(`${r.category}: ${clip(r.details.trim(), LIMITS.note)}`);
        }
      }
    }
  }
  grouped.flush(path, cve, skips);

  const affected = finishRows([...rows.values()]);
  let severity = impactSeverity(ctx.aggregateText);
  let vendorSeverity = ctx.aggregateText;
  if (ctx.aggregateText === undefined) {
    for (const word of [...defaultImpacts, ...[...rows.values()].flatMap((r) => r.impacts)]) {
      const s = impactSeverity(word);
      if (vendorSeverity === undefined || higherSeverity(s, severity)) {
        severity = s;
        vendorSeverity = word;
      }
    }
  }
  const notes = parseList(own(v, "notes"), Note, path, rec("notes"), skips);
  const note = (category: string) => notes.find((n) => n.category === category)?.text.trim();
  const statement = notes.find((n) => n.category === "other" && /statement/i.test(n.title ?? ""))?.text.trim();
  const description = note("description");
  const title = stringOr(own(v, "title"));
  const summary = note("summary") ?? title;

  const references: AdvisoryReference[] = [];
  for (const r of [...parseList(own(v, "references"), Reference, path, rec("references"), skips), ...ctx.docRefs]) {
    if (references.some((x) => x.url === r.url)) continue;
    const type = r.category === "self" ? "ADVISORY" : r.category === "external" ? "WEB" : undefined;
    references.push(type === undefined ? { url: r.url } : { type, url: r.url });
  }
  const advisoryIds = [...new Set([...rows.values()].flatMap((r) => [...r.advisories]))].sort(byString);
  for (const id of advisoryIds) {
    const url = `https://access.redhat.com/errata/${id}`;
    if (!references.some((x) => x.url === url)) references.push({ type: "ADVISORY", url });
  }

  const advisory: Advisory = {
    id: cve,
    aliases: [],
    advisoryIds,
    severity,
    cvss,
    references,
    affected,
    origin: { file: path, record: cve },
  };
  if (summary !== undefined && summary !== "") advisory.summary = clip(summary, LIMITS.text);
  const details = [description, statement === undefined ? undefined : `Statement: ${statement}`].filter((x) => x !== undefined && x !== "");
  if (details.length > 0) advisory.details = clip(details.join("\n\n"), LIMITS.text);
  if (vendorSeverity !== undefined) advisory.vendorSeverity = clip(vendorSeverity, 64);
  const published = stringOr(own(v, "release_date")) ?? ctx.initial;
  if (published !== undefined) advisory.published = clip(published, 64);
  if (ctx.modified !== undefined) advisory.modified = clip(ctx.modified, 64);
  return advisory;
}

/**
 * The product status and its remediations → a fix state:
 * fixed/first_fixed → fixed at the component's EVR (a fixed status without a version is skipped);
 * known_affected (first_affected, last_affected) → `no_fix_planned` "Out of support scope" → end_of_life,
 * other `no_fix_planned` ("Will not fix") → wont_fix, `none_available` "Deferred"/"Fix deferred" →
 * deferred, else not_fixed; known_not_affected → not_affected; under_investigation → under_investigation.
 */
function fixState(
  status: Status,
  c: Component,
  rems: Array<z.infer<typeof Remediation>>,
): { fixState: FixState; ranges: AffectedRange[]; fixed?: string } | { skip: string } {
  switch (status) {
    case "fixed":
    case "first_fixed":
      if (c.evr === undefined) return { skip: `${status} without a version` };
      return { fixState: "fixed", fixed: c.evr, ranges: [{ type: "ECOSYSTEM", events: [{ introduced: "0" }, { fixed: c.evr }] }] };
    case "known_affected":
    case "first_affected":
    case "last_affected": {
      let events: AffectedRange["events"] = [{ introduced: "0" }];
      if (status === "first_affected" && c.evr !== undefined) events = [{ introduced: c.evr }];
      if (status === "last_affected" && c.evr !== undefined) events = [{ introduced: "0" }, { last_affected: c.evr }];
      const ranges: AffectedRange[] = [{ type: "ECOSYSTEM", events }];
      const noFix = rems.find((r) => r.category === "no_fix_planned");
      if (noFix) return { fixState: /out of support/i.test(noFix.details ?? "") ? "end_of_life" : "wont_fix", ranges };
      const none = rems.find((r) => r.category === "none_available");
      if (none && /defer/i.test(none.details ?? "")) return { fixState: "deferred", ranges };
      return { fixState: "not_fixed", ranges };
    }
    case "known_not_affected":
      return { fixState: "not_affected", ranges: [] };
    case "under_investigation":
      return { fixState: "under_investigation", ranges: [] };
  }
}

/**
 * Rows sorted; binary-RPM rows dropped where they only repeat a source-RPM row (Red Hat lists a fixed
 * build's binaries next to its SRPM, all with the SRPM's EVR): a fixed binary row goes when a fixed source
 * row of the same ecosystem and module has the same versions; an unfixed binary row goes when a source row
 * of the same name, ecosystem, module and state exists. Binary rows with no such source row are kept.
 */
function finishRows(accs: RowAcc[]): AffectedPackage[] {
  const sources = accs.filter((a) => a.row.nameKind === "source").map((a) => a.row);
  const out: AffectedPackage[] = [];
  for (const acc of accs) {
    const r = acc.row;
    if (r.nameKind === "binary") {
      const covered = sources.some(
        (s) =>
          s.ecosystem === r.ecosystem &&
          s.module === r.module &&
          s.fixState === r.fixState &&
          (r.fixState === "fixed" ? r.fixedVersions.every((v) => s.fixedVersions.includes(v)) : s.name === r.name),
      );
      if (covered) continue;
    }
    r.fixedVersions.sort(byString);
    r.ranges.sort((a, b) => byString(JSON.stringify(a), JSON.stringify(b)));
    const detail: Record<string, unknown> = { cpes: [...acc.cpes].sort(byString) };
    if (acc.flags.size > 0) detail.flags = [...acc.flags].sort(byString);
    if (acc.advisories.size > 0) detail.advisories = [...acc.advisories].sort(byString);
    if (acc.remediation.size > 0) detail.remediations = [...acc.remediation].sort(byString);
    r.detail = detail;
    let worst: string | undefined;
    for (const word of acc.impacts) {
      if (worst === undefined || higherSeverity(impactSeverity(word), impactSeverity(worst))) worst = word;
    }
    if (worst !== undefined) r.vendorSeverity = clip(worst, 64);
    out.push(r);
  }
  return out.sort(
    (a, b) =>
      byNatural(a.ecosystem, b.ecosystem) ||
      byString(a.name, b.name) ||
      byString(a.module ?? "", b.module ?? "") ||
      byString(a.nameKind, b.nameKind) ||
      byString(a.fixState, b.fixState),
  );
}

function cvssVersion(version: string, vector: string): Cvss["version"] | undefined {
  if (vector.startsWith("CVSS:3.1/")) return "3.1";
  if (vector.startsWith("CVSS:3.0/")) return "3.0";
  if (vector.startsWith("CVSS:4.0/")) return "4.0";
  if (/^(?:\(?AV:[LAN])/.test(vector) && version.startsWith("2")) return "2.0";
  return undefined;
}

function stringOr(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** A list of records, each checked; bad elements are skipped with their index. */
function parseList<T extends z.ZodType>(value: unknown, schema: T, file: string, at: string, skips: SkipLog): Array<z.infer<T>> {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    skips.add(file, at, `${kindOf(value)}, expected a list`);
    return [];
  }
  const out: Array<z.infer<T>> = [];
  value.forEach((el, i) => {
    const r = schema.safeParse(el);
    if (r.success) out.push(r.data as z.infer<T>);
    else skips.add(file, `${at}[${i}]`, zodReason(r.error));
  });
  return out;
}
