import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * The text of the key file at `path` (mode 0600), created there with `create()` on first use. Every process of a data
 * folder may start at once: the key is written whole to a file of its own and linked into place, so a process that
 * finds the file never reads it half written, and the first link wins (the others read it).
 */
export async function keyFile(path: string, create: () => string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await mkdir(dirname(path), { recursive: true });
  const whole = `${path}.${process.pid}.${randomBytes(6).toString("hex")}`;
  try {
    await writeFile(whole, create(), { mode: 0o600, flag: "wx" });
    await link(whole, path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // A filesystem without hard links (vfat, some network mounts): created in place, as before (a process starting at
    // that very moment may then read it half written).
    if (code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP") await createInPlace(path, create);
    // Another process of this data folder created it first: use theirs.
    else if (code !== "EEXIST") throw error;
  } finally {
    // Never left behind (it holds the key), whatever failed.
    await unlink(whole).catch(() => {});
  }
  return readFile(path, "utf8");
}

async function createInPlace(path: string, create: () => string) {
  try {
    await writeFile(path, create(), { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
}
