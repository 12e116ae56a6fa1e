import { PortcullisError } from "../../../errors.js";
export type CloudCredentialCode = "ECR_AUTH_FAILED" | "GCR_AUTH_FAILED" | "NO_CLOUD_CREDENTIALS" | "EMBARGOED";

/** A cloud credential helper could not produce credentials. Messages say what and how to fix; never a secret. */
export class CloudCredentialError extends PortcullisError {
  readonly domain = "registry";
  override name = "CloudCredentialError";
  constructor(
    readonly code: CloudCredentialCode,
    readonly provider: "ecr" | "gcr",
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}
