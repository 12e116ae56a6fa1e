import type { KubeService, PostgresService, RegistryService } from "./services.js";

export interface TestEnv {
  runDir: string;
  /** True when a missing service must fail the run (CI, or PORTCULLIS_REQUIRE_SERVICES=1). */
  strict: boolean;
  services: {
    postgres?: PostgresService;
    kube?: KubeService;
    registryBasic?: RegistryService;
    registryToken?: RegistryService;
    registryTls?: RegistryService;
  };
  /** Why a service is absent. */
  missing: Partial<Record<ServiceName, string>>;
  /** Absolute paths of the command-line tools found (kubectl, helm, skopeo, umoci, openssl). */
  tools: Record<string, string>;
}

export type ServiceName = keyof TestEnv["services"];

export function requireServices(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.PORTCULLIS_REQUIRE_SERVICES === "1" || env.CI === "true" || env.CI === "1";
}

declare module "vitest" {
  export interface ProvidedContext {
    portcullisEnv: TestEnv;
  }
}
