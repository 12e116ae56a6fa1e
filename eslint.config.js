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
  {
    // The bottom of the import graph (docs/architecture.md, "Rules the code keeps"): the shared types and the
    // error base import nothing of the project, and the store imports none of the packages that use it, so no
    // package imports another's types in a loop again.
    files: ["src/model/**/*.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": ["error", {
        patterns: [{ group: ["../*"], message: "src/model is a leaf: it imports nothing of the project" }],
      }],
    },
  },
  {
    files: ["src/errors.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": ["error", {
        patterns: [{ group: ["./*", "../*"], message: "src/errors.ts is a leaf: it imports nothing of the project" }],
      }],
    },
  },
  {
    files: ["src/store/**/*.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": ["error", {
        patterns: [{
          group: ["../indexer/*", "../layers/*", "../scanners/*", "../findings/*", "../matcher/*", "../advisories/*"],
          message: "the store imports the model (src/model), not the packages that use the store",
        }],
      }],
    },
  },
);
