import { defineConfig } from "vitest/config";

// Two projects: `unit` (beside the code, no services) and `integration` (test/, against the real services
// that test/env/global-setup.ts starts for the run). `npm test` runs both.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["src/**/*.test.ts"],
          environment: "node",
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/env/global-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // The services are shared by the whole run; files run one at a time so they do not fight for
          // the two cores and a slow file cannot starve another's deadlines.
          pool: "forks",
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
