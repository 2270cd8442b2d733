import { mkdir, mkdtemp, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { demoDataDir, freshDemoData } from "./data-dir.ts";

describe("the demo's data folder", () => {
  it("is its own: SIMROOT_DATA_DIR (the control plane's data) is never where the demo starts over", () => {
    expect(demoDataDir({ SIMROOT_DATA_DIR: "/srv/simroot" })).toBe(join(process.cwd(), ".data", "demo"));
    expect(demoDataDir({ SIMROOT_DATA_DIR: "/srv/simroot", DEMO_DATA_DIR: "/tmp/d" })).toBe("/tmp/d");
  });

  it("starts over only in a folder the demo made: another folder is refused and left as it was", async () => {
    const root = await mkdtemp(join(tmpdir(), "simroot-demo-"));
    const precious = join(root, "precious");
    await mkdir(precious);
    await writeFile(join(precious, "notes.txt"), "keep");
    await expect(freshDemoData(precious)).rejects.toThrow(/not made by the demo/);
    expect(await readdir(precious)).toEqual(["notes.txt"]);

    const demo = join(root, "demo");
    await freshDemoData(demo); // absent: made, marked
    await writeFile(join(demo, "old-table"), "x");
    await freshDemoData(demo); // the demo's own: emptied, marked again
    expect(await readdir(demo)).toEqual([".simroot-demo"]);
  });
});
