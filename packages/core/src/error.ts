/** What kind of failure an error is; each transport maps kinds to its own status codes. */
export type ErrorKind = "input" | "auth" | "forbidden" | "not_found" | "conflict" | "unavailable" | "internal";

export interface FieldIssue {
  readonly path: string;
  readonly message: string;
}

/**
 * The one error type the domain throws. `code` is dotted and stable (`device.not_found`):
 * clients and the problem+json `type` key off it.
 */
export class SimrootError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly issues: readonly FieldIssue[];
  readonly detail: Readonly<Record<string, unknown>>;

  constructor(
    code: string,
    kind: ErrorKind,
    message: string,
    options: { issues?: FieldIssue[]; detail?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "SimrootError";
    this.code = code;
    this.kind = kind;
    this.issues = options.issues ?? [];
    this.detail = options.detail ?? {};
  }
}

export const isSimrootError = (error: unknown): error is SimrootError => error instanceof SimrootError;
