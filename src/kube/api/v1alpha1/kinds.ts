// The group's kinds as the shared cache knows them (../../kind.ts).
import { customKind, type Kind } from "../../kind.js";
import type { KubeObject } from "../../informer.js";
import { CLUSTER_IMAGE_POLICY_PLURAL, GROUP, IMAGE_POLICY_PLURAL, IMAGESCAN_PLURAL, VERSION } from "./group.js";
import type { ImageScan } from "./imagescan.js";

export const IMAGESCANS: Kind<ImageScan> = customKind<ImageScan>(GROUP, VERSION, IMAGESCAN_PLURAL);
/** Policies are held raw: each is parsed (and an invalid one reported) by whoever reads it. */
export const IMAGE_POLICIES: Kind<KubeObject> = customKind(GROUP, VERSION, IMAGE_POLICY_PLURAL);
export const CLUSTER_IMAGE_POLICIES: Kind<KubeObject> = customKind(GROUP, VERSION, CLUSTER_IMAGE_POLICY_PLURAL);
