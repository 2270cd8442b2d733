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
  await writeFile(whole, create(), { mode: 0o600, flag: "wx" });
  try {
    await link(whole, path);
  } catch (error) {
    // Another process of this data folder created it first: use theirs.
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  } finally {
    await unlink(whole);
  }
  return readFile(path, "utf8");
}
