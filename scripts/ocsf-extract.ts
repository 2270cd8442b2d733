/**
 * Extracts from the OCSF schema sources the subset the tests validate against: the files
 * that validating one event of every shape simroot emits reads (classes, their parents and
 * profiles, the objects in use), the dictionary cut to the attributes those files name, and
 * the license and notice. Re-run after adding a class or an object to the mappers:
 *
 *   node scripts/ocsf-extract.ts <path to ocsf-schema sources>
 */
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ocsfSchema } from "../packages/core/src/integration/ocsf/ocsf-schema.test-support.ts";
import { sampleOcsfEvents } from "../packages/core/src/integration/ocsf/ocsf-samples.test-support.ts";

const source = process.argv[2] ?? join(import.meta.dirname, "..", "..", "shared", "reference", "ocsf-schema");
const target = join(import.meta.dirname, "..", "packages", "core", "src", "integration", "ocsf", "schema");
const schema = ocsfSchema(source);
for (const event of sampleOcsfEvents()) {
  const problems = schema.validate(event);
  if (problems.length > 0) throw new Error(`class ${event.class_uid}: ${problems.join("; ")}`);
}
rmSync(target, { recursive: true, force: true });
const names = new Set<string>();
const collect = (attributes: Record<string, unknown>) => {
  for (const name of Object.keys(attributes)) names.add(name);
};
for (const file of [...schema.filesRead].sort()) {
  if (file === "dictionary.json") continue;
  mkdirSync(dirname(join(target, file)), { recursive: true });
  copyFileSync(join(source, file), join(target, file));
  collect((JSON.parse(readFileSync(join(source, file), "utf8")) as { attributes?: Record<string, unknown> }).attributes ?? {});
}
const dictionary = JSON.parse(readFileSync(join(source, "dictionary.json"), "utf8"));
dictionary.attributes = Object.fromEntries(Object.entries(dictionary.attributes).filter(([name]) => names.has(name)));
writeFileSync(join(target, "dictionary.json"), `${JSON.stringify(dictionary, null, 2)}\n`);
for (const file of ["LICENSE", "NOTICE"]) copyFileSync(join(source, file), join(target, file));
const sourceNote =
  readFileSync(join(source, "SOURCE.md"), "utf8")
    .split("\n")
    .find((line) => line.includes("version")) ?? "";
writeFileSync(
  join(target, "README.md"),
  `# OCSF schema subset\n\nExtracted by \`scripts/ocsf-extract.ts\` from the OCSF schema sources for simroot's OCSF tests: only the files\nthat validating simroot's events reads, and the dictionary cut to the attributes they name. Unmodified otherwise.\nApache License 2.0: see LICENSE and NOTICE.\n\nSource: ${sourceNote.replace(/^# /, "")}\n`,
);
console.log(`kept ${schema.filesRead.size} files and ${names.size} dictionary attributes in ${target}`);
