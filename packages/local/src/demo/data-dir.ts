/**
 * Where `npm run demo` keeps its data, and starting it over. The demo begins from nothing each run, so it deletes its
 * folder first: only a folder it made (marked by `.simroot-demo`), never the control plane's own data. It does not
 * read SIMROOT_DATA_DIR, which a user may have exported for `npm start` (it did until 2026-12-05, and deleted that
 * folder: the tables, the bus journal and the feed signing key PEPs pin).
 */
import { access, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";

const marker = ".simroot-demo";

const defaultDir = () => resolve(join(".data", "demo"));

/** DEMO_DATA_DIR, or `.data/demo`. */
export const demoDataDir = (env: NodeJS.ProcessEnv = process.env) => resolve(env.DEMO_DATA_DIR ?? defaultDir());

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/**
 * Empties `dir` for a new demo run (making it if absent); refuses a folder with content that the demo did not make.
 * `.data/demo` itself is the demo's even unmarked: only the demo ever used it (before the marker).
 */
export async function freshDemoData(dir: string): Promise<void> {
  if (await exists(dir)) {
    const entries = await readdir(dir);
    if (entries.length > 0 && !entries.includes(marker) && resolve(dir) !== defaultDir()) {
      throw new Error(`${dir} is not made by the demo (no ${marker} in it): set DEMO_DATA_DIR to an empty or new folder`);
    }
    await rm(dir, { recursive: true, force: true });
  }
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, marker), "simroot demo data: deleted at the start of each `npm run demo`\n");
}
