/**
 * A stage's first tenant and its admin key, shown once: the platform tenant, the one whose admin may create tenants
 * (`simroot tenants create`). `npm start` does this on its first run; for a deployed stage, run it once after the
 * first deploy, with the deploy's table names (every `SIMROOT_TABLE_*` the deploy outputs) and the shell's AWS
 * credentials (what a commit through the ledger does: reads and writes of the control, identity and audit tables):
 *
 *   SIMROOT_TABLE_CONTROL=<...> SIMROOT_TABLE_IDENTITY=<...> SIMROOT_TABLE_AUDIT=<...> ... AWS_REGION=<...> npm run bootstrap -- [name]
 *
 * (`SIMROOT_TABLE_PREFIX` instead names them all by a prefix; locally `DYNAMODB_ENDPOINT`.) A second run on the same
 * tables creates nothing and exits 1: the platform tenant exists (its admin creates the others, and more keys).
 */
import { createTenantWithAdminKey, environmentPorts, isSimrootError } from "@simroot/core";

const name = process.argv[2] ?? "default";
const ports = environmentPorts();
try {
  const { tenant, token } = await createTenantWithAdminKey(ports, name, { pk: "bootstrap", sk: "bootstrap" });
  console.log(
    [
      `Created the platform tenant ${tenant.id} ("${name}") and its admin API key. It is shown this once only:`,
      "",
      `  ${token}`,
      "",
      `  export SIMROOT_API_KEY=${token}`,
    ].join("\n"),
  );
} catch (error) {
  if (!(isSimrootError(error) && error.kind === "conflict")) throw error;
  console.error("bootstrap: these tables have their platform tenant already: nothing created (its admin creates tenants and keys)");
  process.exitCode = 1;
} finally {
  ports.db.destroy();
}
