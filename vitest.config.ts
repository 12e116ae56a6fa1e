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
          // Some unit suites open an in-memory PGlite store in a hook: initdb in WebAssembly takes seconds,
          // more than vitest's 10 s default when the two cores are busy.
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/env/global-setup.ts"],
          // Every serve a test starts inherits this: no advisory update may reach for the internet from a
          // test. The tests of the updater point it at an upstream on loopback instead.
          env: { PORTCULLIS_ADVISORY_UPDATE_INTERVAL: "0" },
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
