/**
 * Hono with its trie router alone. `hono`'s `Hono` routes through a SmartRouter that tries RegExpRouter first and keeps
 * TrieRouter for what RegExpRouter cannot match, so every function carried both (about 5 KB minified, against a 300 KB
 * budget a function) for a hundred-odd routes a trie matches in microseconds. Every app and sub-app of the API is one
 * of these: routes mounted with `route()` are added to the parent's router.
 */
import type { Env, Schema } from "hono";
import type { BlankSchema } from "hono/types";
import { HonoBase, type HonoOptions } from "hono/hono-base";
import { TrieRouter } from "hono/router/trie-router";

export class Hono<E extends Env = Env, S extends Schema = BlankSchema, BasePath extends string = "/"> extends HonoBase<E, S, BasePath> {
  constructor(options: HonoOptions<E> = {}) {
    super(options);
    this.router = options.router ?? new TrieRouter();
  }
}
