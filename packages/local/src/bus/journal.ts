/**
 * The local bus's write-ahead journal: JSON lines in one file. `append` with `durable`
 * resolves only after the lines are on disk (fdatasync); appends that arrive while a write
 * is in flight share the next write (group commit), so durability costs one sync per batch,
 * not per event. Without a directory the journal keeps nothing (tests that need no restart).
 */
import { open, readFile, rename, mkdir, type FileHandle } from "node:fs/promises";
import { join } from "node:path";

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class Journal<Entry> {
  readonly #path: string | undefined;
  #file: FileHandle | undefined;
  #buffer: string[] = [];
  #waiters: Waiter[] = [];
  #flushing: Promise<void> | undefined;
  #rewriting: Promise<void> | undefined;
  #bytes = 0;

  private constructor(path: string | undefined) {
    this.#path = path;
  }

  /** Opens (or creates) the journal and returns the entries it already holds, oldest first. */
  static async open<Entry>(directory: string | undefined, name = "bus.journal"): Promise<{ journal: Journal<Entry>; entries: Entry[] }> {
    const journal = new Journal<Entry>(directory ? join(directory, name) : undefined);
    if (!journal.#path || !directory) return { journal, entries: [] };
    await mkdir(directory, { recursive: true });
    const text = await readFile(journal.#path, "utf8").catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return "";
      throw error;
    });
    const entries: Entry[] = [];
    for (const line of text.split("\n")) {
      if (!line) continue;
      try {
        entries.push(JSON.parse(line) as Entry);
      } catch {
        // A torn last line from a crash mid-write: it was never acknowledged, so skipping it loses nothing.
      }
    }
    journal.#file = await open(journal.#path, "a");
    journal.#bytes = Buffer.byteLength(text);
    return { journal, entries };
  }

  get bytes(): number {
    return this.#bytes;
  }

  append(entries: readonly Entry[], durable: boolean): Promise<void> {
    if (!this.#path || entries.length === 0) return Promise.resolve();
    for (const entry of entries) this.#buffer.push(`${JSON.stringify(entry)}\n`);
    const written = durable ? new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject })) : Promise.resolve();
    this.#flushing ??= this.#rewriting ? this.#rewriting.then(() => this.#flushLoop()) : this.#flushLoop();
    return written;
  }

  /**
   * Compaction: replaces the whole journal with `snapshot()` (write aside, sync, rename).
   * The snapshot is taken once every earlier append is on disk; later appends wait for it.
   */
  async rewrite(snapshot: () => readonly Entry[]): Promise<void> {
    if (!this.#path) return;
    while (this.#flushing) await this.#flushing;
    this.#rewriting = this.#replace(this.#path, snapshot());
    try {
      await this.#rewriting;
    } finally {
      this.#rewriting = undefined;
    }
  }

  async #replace(path: string, entries: readonly Entry[]): Promise<void> {
    const text = entries.map((entry) => `${JSON.stringify(entry)}\n`).join("");
    const aside = `${path}.compacting`;
    const file = await open(aside, "w");
    await file.writeFile(text);
    await file.datasync();
    await file.close();
    await this.#file?.close();
    await rename(aside, path);
    this.#file = await open(path, "a");
    this.#bytes = Buffer.byteLength(text);
  }

  async close(): Promise<void> {
    while (this.#flushing || this.#rewriting) await (this.#flushing ?? this.#rewriting);
    await this.#file?.close();
    this.#file = undefined;
  }

  async #flushLoop(): Promise<void> {
    while (this.#buffer.length > 0) {
      const chunk = this.#buffer.join("");
      const waiters = this.#waiters;
      this.#buffer = [];
      this.#waiters = [];
      try {
        if (!this.#file) throw new Error("the bus journal is closed");
        await this.#file.write(chunk);
        if (waiters.length > 0) await this.#file.datasync();
        this.#bytes += Buffer.byteLength(chunk);
        for (const waiter of waiters) waiter.resolve();
      } catch (error) {
        for (const waiter of waiters) waiter.reject(error);
      }
    }
    this.#flushing = undefined;
  }
}
