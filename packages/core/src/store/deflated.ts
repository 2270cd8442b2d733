/**
 * JSON stored deflated, as a binary attribute: DynamoDB bills an item by its size (in KB begun, twice inside a
 * transaction), and the JSON simroot stores repeats itself (ids, addresses, field names). Readers open it bounded.
 */
import { deflateRawSync, inflateRawSync } from "node:zlib";

export const deflatedJson = (value: unknown): Uint8Array => deflateRawSync(JSON.stringify(value));

/** Whether JSON text nests arrays and objects deeper than `limit` (brackets inside strings do not count). */
function nestedBeyond(json: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < json.length; index++) {
    const code = json.charCodeAt(index);
    if (inString) {
      if (code === 0x5c)
        index++; // a backslash escapes the next character
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) inString = true;
    else if (code === 0x5b || code === 0x7b) {
      if (++depth > limit) return true;
    } else if (code === 0x5d || code === 0x7d) depth--;
  }
  return false;
}

/**
 * The value of deflated JSON: undefined when it is not deflated JSON, inflates past `maxBytes`, or nests past
 * `maxDepth`. DynamoDB refuses a list or map nested past 32 levels, which bounds a value stored as one; deflated bytes
 * carry no such bound, and hashing a value nested 200,000 deep (under 1 KB of deflate) runs out of stack.
 */
export function openDeflated(stored: Uint8Array, maxBytes: number, maxDepth = 32): unknown {
  try {
    const json = inflateRawSync(stored, { maxOutputLength: maxBytes }).toString("utf8");
    return nestedBeyond(json, maxDepth) ? undefined : (JSON.parse(json) as unknown);
  } catch {
    return undefined;
  }
}
