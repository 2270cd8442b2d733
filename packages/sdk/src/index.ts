export {
  createClient,
  type Call,
  type ClientOptions,
  type GetWithEtag,
  type HttpClient,
  type HttpMethod,
  type PageItem,
  type PagePathParams,
  type PageQuery,
  type PagedPath,
  type PathsWith,
  type RawInit,
  type ResponseData,
  type SimrootClient,
} from "./client.ts";
export { isProblem, isSimrootApiError, SimrootApiError, type Problem, type ProblemFieldError } from "./problem.ts";
export type { components, operations, paths } from "./openapi.d.ts";

import type { components } from "./openapi.d.ts";
/** The API's named schemas: `Schema<"Device">`, `Schema<"AuditRecord">`, ... */
export type Schema<Name extends keyof components["schemas"]> = components["schemas"][Name];
