// The leader's rotator (builtin mode): reads the Secret, plans (plan.ts), writes what changed, and publishes
// the CA bundle into the named webhook configurations; again every reconcile interval while it leads.
// docs/certificates.md has the schedule and the rules of writing.
import { setTimeout as sleep } from "node:timers/promises";
import type * as k8s from "@kubernetes/client-node";
import { code, type TlsApi, type WebhookKind } from "./api.js";
import { bundleFingerprints, parseCert, type Cert } from "./bundle.js";
import { createCA, issueServingCertificate } from "./issue.js";
import { bundleOf, plan, type Mint, type PlanSettings } from "./plan.js";
import { readState, type TlsSecretStore } from "./secret.js";

const MAX_CONFLICTS = 5;

/** Certificates of issue.ts, as the plan holds them. */
export function mintWith(o: { caDays: number; leafDays: number; dnsNames: string[]; ipAddresses: string[] }): Mint {
  return {
    async ca(now) {
      const p = await createCA({ now, validityDays: o.caDays });
      return { cert: parseCert(p.certPem)!, keyPem: p.keyPem };
    },
    async leaf(ca, now) {
      const p = await issueServingCertificate({ certPem: ca.cert.pem, keyPem: ca.keyPem }, { now, validityDays: o.leafDays, dnsNames: o.dnsNames, ipAddresses: o.ipAddresses });
      return { cert: parseCert(p.certPem)!, keyPem: p.keyPem, chainPem: p.certPem };
    },
  };
}

export class CertificateRotator {
  private readonly missingLogged = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: RotatorOptions) {}

  /** Creates or rotates what is due, writes the Secret, and publishes the bundle. Calls are serialized. */
  reconcile(): Promise<ReconcileResult> {
    const run = this.queue.then(() => this.reconcileOnce());
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Reconciles now and every reconcileMs until `signal` aborts (the leader's term). */
  async lead(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.reconcile();
      } catch (e) {
        this.options.log("error", `reconcile failed: ${(e as Error).message}`);
      }
      await sleep(this.options.reconcileMs, undefined, { signal }).catch(() => undefined);
    }
  }

  private async reconcileOnce(): Promise<ReconcileResult> {
    const { store, log } = this.options;
    for (let attempt = 1; ; attempt++) {
      const secret = await store.read();
      const state = readState(secret);
      const before = bundleOf(state);
      // Publish what is stored first: whether every configuration carries it decides a pending CA switch.
      const first = before.length ? await this.publish(before) : { carried: false, patched: [], missing: [] };
      const { state: next, changes, waiting } = await plan(state, this.options.now(), first.carried, this.options.settings, this.options.mint);
      if (waiting) log("warn", "CA rollover: waiting for every webhook configuration to carry the new CA");
      let stored = secret;
      if (changes.length) {
        try {
          stored = await store.write(secret, next);
        } catch (e) {
          if (code(e) === 409 && attempt < MAX_CONFLICTS) {
            log("info", "the Secret changed while reconciling; reading it again");
            continue;
          }
          throw e;
        }
        for (const c of changes) log("info", c);
      }
      if (stored) this.options.onStored(stored);
      const after = bundleOf(next);
      const changedBundle = after.length !== before.length || after.some((c, i) => c.fingerprint !== before[i]?.fingerprint);
      const second = changedBundle ? await this.publish(after) : first;
      return {
        changes,
        patched: [...new Set([...first.patched, ...second.patched])],
        missing: second.missing,
        caBundle: Buffer.from(after.map((c) => c.pem).join("")).toString("base64"),
      };
    }
  }

  /** Puts `bundle` into every entry of every named configuration that differs. `carried`: all existing ones have it. */
  private async publish(bundle: Cert[]): Promise<{ carried: boolean; patched: string[]; missing: string[] }> {
    const { log, webhookConfigurations } = this.options;
    const want = new Set(bundle.map((c) => c.fingerprint));
    const caBundle = Buffer.from(bundle.map((c) => c.pem).join("")).toString("base64");
    const out = { carried: true, patched: [] as string[], missing: [] as string[] };
    const named: Array<[WebhookKind, string]> = [
      ...(webhookConfigurations.validating ?? []).map((n): [WebhookKind, string] => ["validating", n]),
      ...(webhookConfigurations.mutating ?? []).map((n): [WebhookKind, string] => ["mutating", n]),
    ];
    for (const [kind, name] of named) {
      const id = `${kind}/${name}`;
      try {
        const r = await this.publishOne(kind, name, want, caBundle);
        if (r === "missing") {
          out.missing.push(id);
          if (!this.missingLogged.has(id)) log("info", `${kind} webhook configuration ${name} does not exist (yet): its caBundle is set when it does`);
          this.missingLogged.add(id);
          continue;
        }
        this.missingLogged.delete(id);
        if (r === "patched") {
          out.patched.push(id);
          log("info", `set the caBundle of ${kind} webhook configuration ${name} (${bundle.length} CA${bundle.length === 1 ? "" : "s"})`);
        }
      } catch (e) {
        out.carried = false;
        log("error", `setting the caBundle of ${kind} webhook configuration ${name}: ${(e as Error).message}`);
      }
    }
    return out;
  }

  private async publishOne(kind: WebhookKind, name: string, want: Set<string>, caBundle: string): Promise<"missing" | "current" | "patched"> {
    const api = this.options.api();
    for (let attempt = 1; ; attempt++) {
      const cfg = await api.readWebhookConfiguration(kind, name);
      if (!cfg) return "missing";
      const stale = cfg.webhooks.flatMap((w, index) => {
        const have = bundleFingerprints(w.caBundle);
        return have.size === want.size && [...want].every((f) => have.has(f)) ? [] : [{ index, name: w.name, caBundle }];
      });
      if (!stale.length) return "current";
      try {
        await api.setCaBundles(kind, name, cfg.resourceVersion, stale);
        return "patched";
      } catch (e) {
        if (code(e) !== 409 || attempt >= MAX_CONFLICTS) throw e;
      }
    }
  }
}

export interface RotatorOptions {
  api: () => TlsApi;
  store: TlsSecretStore;
  settings: PlanSettings;
  mint: Mint;
  /** Configurations whose every webhook entry gets the caBundle. */
  webhookConfigurations: { validating?: string[]; mutating?: string[] };
  reconcileMs: number;
  now(): Date;
  log(level: "info" | "warn" | "error", msg: string): void;
  /** The Secret as this reconcile left it (the leader serves it at once). */
  onStored(secret: k8s.V1Secret): void;
}

export interface ReconcileResult {
  /** What was created, rotated or dropped (empty: nothing was due). */
  changes: string[];
  /** Configurations whose caBundle was patched (kind/name). */
  patched: string[];
  /** Named configurations that do not exist (kind/name). */
  missing: string[];
  /** The caBundle now in the Secret (base64). */
  caBundle?: string;
}
