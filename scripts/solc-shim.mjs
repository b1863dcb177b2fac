#!/usr/bin/env node
// Command-line face for the npm `solc` package (the official compiler built to WebAssembly),
// answering exactly the two calls py-solc-x makes:
//
//   solc --version          -> "Version: 0.8.28+commit.7893614a.Emscripten.clang"
//   solc --standard-json    -> Standard JSON input on stdin, Standard JSON output on stdout
//
// py-solc-x parses stdout as JSON, so nothing but the output JSON may ever be written there;
// diagnostics go to stderr. Imports are resolved inside the project root only (the same guarantee
// native solc's --allow-paths gives): `@openzeppelin/...` from node_modules, anything else
// relative to the root.
import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

// Flags py-solc-x's compile_standard may pass with a value; accepted and ignored because the
// import callback below already confines reads to the project root.
const FLAGS_WITH_VALUE = new Set(["--base-path", "--allow-paths", "--output-dir"]);
const IGNORED_FLAGS = new Set(["--overwrite"]);

function fail(message) {
  process.stderr.write(`solc-shim: ${message}\n`);
  process.exit(2);
}

function loadSolc() {
  try {
    return require("solc");
  } catch (err) {
    fail(`cannot load npm package 'solc' (${err.message}); run \`npm ci\` in ${ROOT}`);
  }
}

function resolveImport(importPath) {
  const candidates = importPath.startsWith("@openzeppelin/")
    ? [path.join(ROOT, "node_modules", importPath)]
    : [path.join(ROOT, importPath)];
  for (const candidate of candidates) {
    // path.join already collapsed any "..": refuse names that climb out of the root. Symlinks
    // inside the root (e.g. a shared node_modules) are followed on purpose.
    if (!candidate.startsWith(ROOT + path.sep)) {
      return { error: `import outside the project root refused: ${importPath}` };
    }
    if (existsSync(candidate)) return { contents: readFileSync(candidate, "utf8") };
  }
  return { error: `file not found: ${importPath}` };
}

function readStdin() {
  try {
    return readFileSync(0, "utf8");
  } catch (err) {
    fail(`cannot read standard input: ${err.message}`);
  }
}

function main(argv) {
  let mode = null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--version" || arg === "--standard-json") {
      mode = mode ?? arg;
    } else if (FLAGS_WITH_VALUE.has(arg)) {
      i++; // skip its value
    } else if (IGNORED_FLAGS.has(arg)) {
      // accepted, meaningless for an in-memory compile
    } else {
      fail(`unsupported argument '${arg}' (this shim only implements --version and --standard-json)`);
    }
  }
  if (mode === null) fail("usage: solc --version | solc --standard-json < input.json");

  const solc = loadSolc();
  if (mode === "--version") {
    process.stdout.write(`solc, the solidity compiler commandline interface (npm solc shim)\nVersion: ${solc.version()}\n`);
    return;
  }
  const input = readStdin();
  try {
    JSON.parse(input);
  } catch (err) {
    fail(`standard input is not JSON: ${err.message}`);
  }
  const output = solc.compile(input, { import: resolveImport });
  process.stdout.write(output + "\n");
}

main(process.argv.slice(2));
