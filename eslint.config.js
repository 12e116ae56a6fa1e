// @ts-check
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "no-console": "off",
    },
  },
  {
    // The CLI's start path: what `portcullis --version`, `--help` and `scan` load before they do anything.
    // Commands and the store, indexer and registry client are imported with import() when used (types are
    // fine). src/cli/startpath.test.ts checks what is loaded at run time, transitive imports included.
    files: ["src/cli/bin.ts", "src/cli/main.ts", "src/cli/scan.ts", "src/cli/exit.ts", "src/cli/version.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": ["error", {
        paths: ["@kubernetes/client-node", "pino", "prom-client", "undici", "pg", "aws4", "@electric-sql/pglite", "zod"].map((name) => ({
          name, allowTypeImports: true, message: "off the CLI's start path: import() it where it is used",
        })),
        patterns: [{
          group: ["./serve*", "./report*", "./db*", "./env-check*", "../log/*", "../metrics/*", "../kube/*", "../controller/*", "../webhook/*", "../api/*",
            "../advisories/*", "../store/*", "../indexer/*", "../scanners/*", "../registry/*", "../layers/*", "../matcher/*", "../findings/*", "./scan-vulns*"],
          allowTypeImports: true,
          message: "off the CLI's start path (--version, --help, scan --help): import() it where it is used",
        }],
      }],
    },
  },
);
