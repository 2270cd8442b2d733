/**
 * Hono with its trie router alone. `hono`'s `Hono` routes through a SmartRouter, which picks for the whole route table
 * the first of RegExpRouter and TrieRouter that takes every route: the management API's table and the local app's were
 * already on the trie (RegExpRouter refuses them), the other API functions' on RegExpRouter, and every function carried
 * the code of both and of the picker (about 5 KB minified, against a 300 KB budget a function). Every app and sub-app
 * of the API is one of these: routes mounted with `route()` are added to the parent's router. The trie hands a route's
 * handlers over twice where a path segment is literally a parameter's name (honojs/hono#5370): `requireRole` runs once.
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
