import { mkdtemp, readdir, readFile, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";

/** What the filesystem does wrong, per test: a link(2) it does not support, or a disk that fills during the write. */
const faults = vi.hoisted(() => ({ link: false, write: false }));
vi.mock("node:fs/promises", async (original) => {
  const fs = await original<typeof import("node:fs/promises")>();
  return {
    ...fs,
    link: async (from: string, to: string) => {
      if (faults.link) throw Object.assign(new Error("EPERM: operation not permitted, link"), { code: "EPERM" });
      return fs.link(from, to);
    },
    writeFile: async (path: string, data: string, options: never) => {
      if (faults.write) {
        await fs.writeFile(path, data.slice(0, 10), options);
        throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
      }
      return fs.writeFile(path, data, options);
    },
  };
});
const { keyFile } = await import("./key-file.ts");

describe("a key file", () => {
  it("is created in place, mode 0600, where the filesystem has no hard links", async () => {
    const folder = await mkdtemp(join(tmpdir(), "simroot-key-file-"));
    faults.link = true;
    try {
      expect(await keyFile(join(folder, "key"), () => "secret\n")).toBe("secret\n");
    } finally {
      faults.link = false;
    }
    expect(await readdir(folder)).toEqual(["key"]);
    expect((await stat(join(folder, "key"))).mode & 0o777).toBe(0o600);
    // Found there on the next start, not written again.
    expect(await keyFile(join(folder, "key"), () => "another\n")).toBe("secret\n");
  });

  it("leaves no part of a key behind when the write fails", async () => {
    const folder = await mkdtemp(join(tmpdir(), "simroot-key-file-"));
    faults.write = true;
    try {
      await expect(keyFile(join(folder, "key"), () => "secret-key-material\n")).rejects.toThrow(/ENOSPC/);
    } finally {
      faults.write = false;
    }
    expect(await readdir(folder)).toEqual([]);
    // The next start writes it whole.
    expect(await keyFile(join(folder, "key"), () => "k\n")).toBe("k\n");
    expect(await readFile(join(folder, "key"), "utf8")).toBe("k\n");
  });
});
