import type { PageItem, PagePathParams, PageQuery, PagedPath } from "../client.ts";
import { limitOf, pageOptions, type Command, type Context, type OptionSpec } from "./command.ts";
import { nextHint, table, type Column } from "./render.ts";

interface ListSpec<P extends PagedPath> {
  readonly group: string;
  readonly name?: string;
  readonly summary: string;
  readonly path: P;
  readonly columns: readonly Column<PageItem<P>>[];
  /** The positional argument that fills the path's `{id}`. */
  readonly idArg?: string;
  /** Filters beyond limit and cursor, passed through as query parameters. */
  readonly filters?: Readonly<Record<string, OptionSpec>>;
}

/** `<group> list`: one page (with the cursor of the next), or every page with `--all`. */
export function listCommand<P extends PagedPath>(spec: ListSpec<P>): Command {
  return {
    group: spec.group,
    name: spec.name ?? "list",
    args: spec.idArg ? [spec.idArg] : [],
    summary: spec.summary,
    options: { ...spec.filters, ...pageOptions },
    run: async (ctx: Context) => {
      const filters = Object.fromEntries(Object.keys(spec.filters ?? {}).flatMap((name) => (ctx.opt(name) ? [[name, ctx.opt(name)]] : [])));
      const query = { ...filters, limit: limitOf(ctx) } as unknown as PageQuery<P>;
      const pathParams = (spec.idArg ? { id: ctx.arg(spec.idArg) } : undefined) as PagePathParams<P>;
      if (ctx.flag("all")) {
        const items: PageItem<P>[] = [];
        for await (const item of ctx.client.paginate(spec.path, query, pathParams)) items.push(item);
        return ctx.print({ items }, (page) => table(page.items, spec.columns));
      }
      // The generic path defeats openapi-fetch's per-path checks; the spec's types still hold.
      const get = ctx.client.get as unknown as (path: string, init: object) => Promise<{ items: PageItem<P>[]; next?: string }>;
      const page = await get(spec.path, {
        params: { query: { ...query, cursor: ctx.opt("cursor") }, ...(pathParams ? { path: pathParams } : {}) },
      });
      ctx.print(page, (p) => table(p.items, spec.columns) + nextHint(p.next));
    },
  };
}
