// portcullis.dev/v1alpha1: what the webhook, the report API and the controllers share about the group's
// objects. They import this, not each other.
export * from "./group.js";
export * from "./imagescan.js";
export * from "./kinds.js";
export * from "./policy.js";
