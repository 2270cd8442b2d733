/**
 * Amazon EventBridge event pattern matching ("content filtering"), pure and dependency-free. Shared by
 * the local bus (routing to consumers) and automation rules and webhook subscriptions (per tenant).
 * Follows the AWS user guide ("Amazon EventBridge event patterns", "Content filtering in Amazon
 * EventBridge event patterns") and the aws/event-ruler engine behind it:
 * - every field of a pattern object must match (AND); `"$or": [pattern, ...]` needs one branch to match;
 * - a leaf is an array of conditions and matches if ANY condition matches ANY element of the event value;
 * - an event array of objects matches a nested pattern if ONE element matches all of it;
 * - string operators only match strings, `numeric` only matches JSON numbers.
 */
import type { EventPattern } from "../platform/rules.ts";

type JsonObject = { readonly [key: string]: unknown };

const isObject = (value: unknown): value is JsonObject => typeof value === "object" && value !== null && !Array.isArray(value);

const isFiniteNumber = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value);

const ownField = (object: JsonObject, key: string): unknown => (Object.hasOwn(object, key) ? object[key] : undefined);

const foldCase = (text: string): string => text.toLowerCase();

// Matching

/** Counts a match's steps (an object tried, a value walked, a condition tested): tests bound work with it, not time. */
export type MatchMeter = { steps: number };

/** Whether `event` matches `pattern`. The pattern is expected to have passed `validatePattern`. */
export function matchesPattern(pattern: EventPattern, event: unknown, meter: MatchMeter = { steps: 0 }): boolean {
  return matchesNestedPattern(pattern, event, meter);
}

function matchesNestedPattern(pattern: JsonObject, eventValue: unknown, meter: MatchMeter): boolean {
  const objects = objectsWithin(eventValue);
  meter.steps += objects.length;
  return objects.some((fields) =>
    Object.entries(pattern).every(([key, subPattern]) => {
      meter.steps++;
      if (key === "$or") return (subPattern as readonly JsonObject[]).some((branch) => matchesNestedPattern(branch, fields, meter));
      if (Array.isArray(subPattern)) return matchesLeaf(compiledLeaf(subPattern), ownField(fields, key), meter);
      return isObject(subPattern) && matchesNestedPattern(subPattern, ownField(fields, key), meter);
    }),
  );
}

/** The objects a nested pattern is tried against. Missing or scalar values act as an object with no fields. */
function objectsWithin(eventValue: unknown): JsonObject[] {
  const objects = [eventValue].flat(Infinity).filter(isObject);
  return objects.length > 0 ? objects : [{}];
}

/** The leaf values of an event field: arrays are flattened, objects are not leaves, a missing field has none. */
function leafValues(eventValue: unknown): unknown[] {
  return [eventValue].flat(Infinity).filter((value) => value !== undefined && !isObject(value));
}

/**
 * A leaf's conditions as matched: its exact values in one set (a lookup per event value, however many the pattern
 * lists), each operator as a test of one value. Compiled once per leaf array, not per event object it is tried on.
 */
type CompiledLeaf = { readonly exact: ReadonlySet<unknown>; readonly exists: readonly boolean[]; readonly tests: readonly ValueTest[] };
type ValueTest = (value: unknown, folded: () => string) => boolean;

const compiledLeaves = new WeakMap<readonly unknown[], CompiledLeaf>();

function compiledLeaf(conditions: readonly unknown[]): CompiledLeaf {
  let leaf = compiledLeaves.get(conditions);
  if (!leaf) {
    const operators = conditions.filter(isObject);
    leaf = {
      exact: new Set(conditions.filter((condition) => !isObject(condition))),
      exists: operators.flatMap((operator) => (Object.hasOwn(operator, "exists") ? [operator["exists"] === true] : [])),
      tests: operators.filter((operator) => !Object.hasOwn(operator, "exists")).map(compileCondition),
    };
    compiledLeaves.set(conditions, leaf);
  }
  return leaf;
}

function matchesLeaf(leaf: CompiledLeaf, eventValue: unknown, meter: MatchMeter): boolean {
  const values = leafValues(eventValue);
  meter.steps += values.length;
  if (leaf.exists.includes(values.length > 0)) return true;
  return values.some((value) => {
    meter.steps += (leaf.exact.size > 0 ? 1 : 0) + leaf.tests.length;
    if (leaf.exact.has(value)) return true;
    // Folded once per value, for every ignore-case operator of the leaf.
    let folded: string | undefined;
    const foldedValue = () => (folded ??= foldCase(value as string));
    return leaf.tests.some((test) => test(value, foldedValue));
  });
}

/** One operator condition (not `exists`) as a test of one leaf value of the event. */
function compileCondition(condition: JsonObject): ValueTest {
  const [operator, operand] = Object.entries(condition)[0] ?? [];
  if (operator === "anything-but") {
    const excluded = compiledLeaf(excludedConditions(operand));
    return (value, folded) => !excluded.exact.has(value) && !excluded.tests.some((test) => test(value, folded));
  }
  if (operator === "numeric") return (value) => typeof value === "number" && Array.isArray(operand) && satisfiesAll(value, operand);
  const matches = typeof operator === "string" ? compileString(operator, operand) : () => false;
  return (value, folded) => typeof value === "string" && matches(value, folded);
}

function compileString(operator: string, operand: unknown): (text: string, folded: () => string) => boolean {
  switch (operator) {
    case "prefix":
      return compileAffix(operand, (whole, affix) => whole.startsWith(affix));
    case "suffix":
      return compileAffix(operand, (whole, affix) => whole.endsWith(affix));
    case "equals-ignore-case": {
      const expected = typeof operand === "string" ? foldCase(operand) : undefined;
      return (_text, folded) => expected !== undefined && folded() === expected;
    }
    case "wildcard": {
      const parts = typeof operand === "string" ? wildcardParts(operand) : undefined;
      return (text) => parts !== undefined && wildcardMatches(parts, text);
    }
    case "cidr": {
      const block = typeof operand === "string" ? parseCidr(operand) : undefined;
      return (text) => block !== undefined && isWithinCidr(text, block);
    }
    default:
      return () => false;
  }
}

/** A `prefix`/`suffix` operand is a string, or `{"equals-ignore-case": string}`. */
function compileAffix(operand: unknown, test: (whole: string, affix: string) => boolean): (text: string, folded: () => string) => boolean {
  if (typeof operand === "string") return (text) => test(text, operand);
  const ignoringCase = isObject(operand) ? operand["equals-ignore-case"] : undefined;
  if (typeof ignoringCase !== "string") return () => false;
  const affix = foldCase(ignoringCase);
  return (_text, folded) => test(folded(), affix);
}

/** `anything-but` excludes a value, a list of values, or what `{operator: operand | operand[]}` matches. */
function excludedConditions(operand: unknown): readonly unknown[] {
  if (Array.isArray(operand)) return operand;
  if (!isObject(operand)) return [operand];
  return Object.entries(operand).flatMap(([operator, inner]) =>
    (Array.isArray(inner) ? inner : [inner]).map((each: unknown) => ({ [operator]: each })),
  );
}

/** The literal parts of a wildcard between its stars, once per condition rather than per value it is tried on. */
function wildcardParts(wildcard: string): string[] {
  // The literal parts between the stars.
  const parts: string[] = [""];
  for (let index = 0; index < wildcard.length; index++) {
    const char = wildcard[index]!;
    if (char === "*") parts.push("");
    else parts[parts.length - 1] += char === "\\" ? (wildcard[++index] ?? "") : char;
  }
  return parts;
}

/**
 * Whether `text` matches the wildcard of `parts`: `*` matches any run of characters; `\*` is a literal star and `\\` a literal
 * backslash. A tenant writes the pattern, so it is matched in time linear in the text for each star, without the
 * backtracking of a regular expression (`^.*a.*a…b$` is exponential: 6 stars against 64 characters took 6 s). Each
 * star takes the shortest run that lets the literal part after it match; a later failure only moves the last star on.
 */
function wildcardMatches(parts: readonly string[], text: string): boolean {
  const first = parts[0]!;
  if (parts.length === 1) return text === first;
  const last = parts[parts.length - 1]!;
  if (!text.startsWith(first) || text.length < first.length + last.length || !text.endsWith(last)) return false;
  // The middle parts in order, each at its first place after the one before, within what the first and last leave.
  let at = first.length;
  const end = text.length - last.length;
  for (const part of parts.slice(1, -1)) {
    const found = text.indexOf(part, at);
    if (found < 0 || found + part.length > end) return false;
    at = found + part.length;
  }
  return true;
}

const numericComparisons = new Map<unknown, (value: number, bound: number) => boolean>([
  ["=", (value, bound) => value === bound],
  ["<", (value, bound) => value < bound],
  ["<=", (value, bound) => value <= bound],
  [">", (value, bound) => value > bound],
  [">=", (value, bound) => value >= bound],
]);

/** A `numeric` operand is `[operator, bound]` or `[operator, bound, operator, bound]`; every comparison must hold. */
function satisfiesAll(value: number, comparisons: readonly unknown[]): boolean {
  for (let index = 0; index < comparisons.length; index += 2) {
    const compare = numericComparisons.get(comparisons[index]);
    const bound = comparisons[index + 1];
    if (!compare || typeof bound !== "number" || !compare(value, bound)) return false;
  }
  return true;
}

// IP addresses (IPv4 and IPv6)

type IpAddress = { readonly bits: bigint; readonly width: 32 | 128 };

function parseIpAddress(text: string): IpAddress | undefined {
  const ipv4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (ipv4) {
    const octets = ipv4.slice(1).map(Number);
    if (octets.some((octet) => octet > 255)) return undefined;
    return { bits: octets.reduce((bits, octet) => (bits << 8n) | BigInt(octet), 0n), width: 32 };
  }
  const [head = [], tail, ...extra] = text.split("::").map((part) => (part === "" ? [] : part.split(":")));
  const missing = 8 - head.length - (tail?.length ?? 0);
  if (extra.length > 0 || (tail ? missing < 1 : missing !== 0)) return undefined;
  const groups = [...head, ...Array<string>(missing).fill("0"), ...(tail ?? [])];
  if (!groups.every((group) => /^[0-9a-f]{1,4}$/i.test(group))) return undefined;
  return { bits: groups.reduce((bits, group) => (bits << 16n) | BigInt(parseInt(group, 16)), 0n), width: 128 };
}

function parseCidr(cidr: string): { network: IpAddress; prefixLength: number } | undefined {
  const [address = "", prefixLength = "", ...extra] = cidr.split("/");
  const network = parseIpAddress(address);
  if (!network || extra.length > 0 || !/^\d{1,3}$/.test(prefixLength)) return undefined;
  return Number(prefixLength) <= network.width ? { network, prefixLength: Number(prefixLength) } : undefined;
}

function isWithinCidr(text: string, block: { network: IpAddress; prefixLength: number }): boolean {
  const address = parseIpAddress(text);
  if (!address || address.width !== block.network.width) return false;
  const hostBits = BigInt(address.width - block.prefixLength);
  return address.bits >> hostBits === block.network.bits >> hostBits;
}

// Validation

/** Throws an Error naming the offending path (e.g. `detail.state[0]`) if `pattern` is not a valid event pattern. */
export function validatePattern(pattern: unknown): void {
  validateNestedPattern(pattern, "", 0);
}

/**
 * `validatePattern` for a pattern of simroot's own automation rules and webhook subscriptions, which see the events of
 * source `simroot` only (what simroot applied or decided; raw facts, `simroot.ingest`, reach only an integrator's own
 * EventBridge rules): a pattern whose `source` names only other sources could never match, and is refused.
 */
export function validateSimrootPattern(pattern: unknown): void {
  validatePattern(pattern);
  // A rule's or a subscription's change travels as an event carrying its pattern (a rule's update, twice): bounded, as
  // policies are (policy/records.ts `maxPolicyBytes`), so that event stays one the bus takes (review 74).
  const bytes = Buffer.byteLength(JSON.stringify(pattern));
  if (bytes > maxSimrootPatternBytes) fail("", `at most ${maxSimrootPatternBytes} bytes as JSON, this is ${bytes}`);
  countConditions(pattern as JsonObject, "", { count: 0 });
  const sources = (pattern as Record<string, unknown>).source;
  if (Array.isArray(sources) && sources.every((each) => typeof each === "string") && !sources.includes("simroot")) {
    fail("source", `rules and webhook subscriptions see events of source "simroot" only; ${JSON.stringify(sources)} never arrives here`);
  }
}

/**
 * Why a stored rule's or subscription's pattern does not run (review 90): the checks a new one passes, applied when it
 * is loaded, so one stored before a bound (100 conditions: review 86) is not matched past it. Undefined if it passes.
 */
export function storedPatternProblem(pattern: unknown): string | undefined {
  try {
    validateSimrootPattern(pattern);
    return undefined;
  } catch (error) {
    return `the stored pattern is refused now (${(error as Error).message}): it matches nothing until it is changed`;
  }
}

/**
 * How many conditions a rule's or a subscription's pattern may hold, counted as matching pays for them: each field,
 * each `$or` branch and each operator (prefix, suffix, wildcard, numeric, cidr, equals-ignore-case, exists, each
 * operand of an anything-but operator) is tried at most once per event node it reaches, and a field's exact values
 * (and an anything-but's list of them) are one set looked up once per event value, so count one however many they are.
 * One consumer matches every tenant's rules, and the bytes alone did not bound this: 300 `$or` branches in 16 KiB took
 * 1.2 to 2.8 s per rule and event, 692 wildcards 0.2 to 0.8 s (review 86). With this bound a match walks at most about
 * 2 x 100 x the event's nodes (`pattern-cost.test.ts`), whatever the pattern.
 * Why 100: SNS documents a filter policy's bound as 150 combinations (the product of its arrays' lengths) and 5 keys;
 * EventBridge refuses an `$or` pattern past a number of combinations too (1,000 as recalled; not re-checked against its
 * guide here). Both count exact values, which cost one lookup here, and multiply what adds up here. simroot's own and documented patterns hold 3 to 10 conditions; a rule naming
 * 1,000 devices holds 2 (`source`, `subject`).
 */
export const maxPatternConditions = 100;

function countConditions(pattern: JsonObject, path: string, counted: { count: number }): void {
  const add = (conditions: number, at: string) => {
    counted.count += conditions;
    if (counted.count > maxPatternConditions) {
      fail(at, `more than ${maxPatternConditions} conditions (fields, $or branches, operators; a field's exact values count once)`);
    }
  };
  for (const [key, subPattern] of Object.entries(pattern)) {
    const fieldPath = path ? `${path}.${key}` : key;
    if (key === "$or") {
      (subPattern as JsonObject[]).forEach((branch, index) => {
        add(1, `${fieldPath}[${index}]`);
        countConditions(branch, `${fieldPath}[${index}]`, counted);
      });
      continue;
    }
    add(1, fieldPath);
    if (!Array.isArray(subPattern)) {
      countConditions(subPattern as JsonObject, fieldPath, counted);
      continue;
    }
    if (subPattern.some((condition) => !isObject(condition))) add(1, fieldPath);
    subPattern.forEach((condition, index) => {
      if (isObject(condition)) add(operatorConditions(condition), `${fieldPath}[${index}]`);
    });
  }
}

/** An operator object's conditions: one, but for anything-but's operator with a list (each of its operands). */
function operatorConditions(condition: JsonObject): number {
  const excluded = condition["anything-but"];
  if (!isObject(excluded)) return 1;
  return Object.values(excluded).reduce((sum: number, inner) => sum + (Array.isArray(inner) ? inner.length : 1), 0);
}

/** The most a rule's or a subscription's pattern may take, as JSON. */
export const maxSimrootPatternBytes = 16 * 1024;

/**
 * How deep a pattern may nest its objects. A rule or a subscription is stored with its pattern as a DynamoDB map, which
 * nests at most 32 levels with the item's own; an event's detail is nowhere near this deep.
 */
const maxPatternDepth = 20;

function fail(path: string, problem: string): never {
  throw new Error(`Invalid event pattern at "${path || "(root)"}": ${problem}`);
}

function validateNestedPattern(pattern: unknown, path: string, depth: number): void {
  if (!isObject(pattern)) fail(path, "must be a JSON object");
  if (depth >= maxPatternDepth) fail(path, `nested deeper than ${maxPatternDepth} levels`);
  const fields = Object.entries(pattern);
  if (fields.length === 0) fail(path, "empty objects are not allowed");
  for (const [key, subPattern] of fields) {
    const fieldPath = path ? `${path}.${key}` : key;
    if (key === "$or") {
      if (!Array.isArray(subPattern) || subPattern.length < 2) fail(fieldPath, "must be an array of at least 2 patterns");
      subPattern.forEach((branch, index) => {
        validateNestedPattern(branch, `${fieldPath}[${index}]`, depth + 1);
      });
    } else if (Array.isArray(subPattern)) {
      if (subPattern.length === 0) fail(fieldPath, "empty arrays are not allowed");
      subPattern.forEach((condition, index) => {
        validateCondition(condition, `${fieldPath}[${index}]`);
      });
    } else if (isObject(subPattern)) {
      validateNestedPattern(subPattern, fieldPath, depth + 1);
    } else {
      fail(fieldPath, "must be an array of match values or a nested pattern object");
    }
  }
}

function validateCondition(condition: unknown, path: string): void {
  if (condition === null || typeof condition === "string" || typeof condition === "boolean") return;
  if (isFiniteNumber(condition)) return;
  if (!isObject(condition)) fail(path, "a match value must be a string, number, boolean, null or operator object");
  const [operator, operand] = onlyEntry(condition, path);
  const operatorPath = `${path}.${operator}`;
  switch (operator) {
    case "prefix":
    case "suffix":
      validateAffix(operand, operatorPath);
      return;
    case "equals-ignore-case":
      requireString(operand, operatorPath);
      return;
    case "wildcard":
      validateWildcard(operand, operatorPath);
      return;
    case "exists":
      ensure(typeof operand === "boolean", operatorPath, "must be true or false");
      return;
    case "numeric":
      validateNumeric(operand, operatorPath);
      return;
    case "cidr":
      ensure(typeof operand === "string" && !!parseCidr(operand), operatorPath, "must be a CIDR block");
      return;
    case "anything-but":
      validateAnythingBut(operand, operatorPath);
      return;
    default:
      fail(path, `unknown operator "${operator}"`);
  }
}

function ensure(condition: boolean, path: string, problem: string): void {
  if (!condition) fail(path, problem);
}

function requireString(operand: unknown, path: string): asserts operand is string {
  if (typeof operand !== "string") fail(path, "must be a string");
}

function onlyEntry(object: JsonObject, path: string): [string, unknown] {
  const [entry, ...others] = Object.entries(object);
  if (!entry || others.length > 0) fail(path, "an operator object must have exactly one key");
  return entry;
}

function validateAffix(operand: unknown, path: string): void {
  const affix = isObject(operand) && Object.keys(operand).length === 1 ? operand["equals-ignore-case"] : operand;
  ensure(typeof affix === "string", path, 'must be a string or {"equals-ignore-case": string}');
}

function validateWildcard(operand: unknown, path: string): void {
  requireString(operand, path);
  for (let index = 0; index < operand.length; index++) {
    if (operand[index] === "\\") {
      const escaped = operand[++index];
      ensure(escaped === "*" || escaped === "\\", path, "a backslash may only escape * or \\");
    } else if (operand[index] === "*" && operand[index + 1] === "*") {
      fail(path, "consecutive wildcard characters are not allowed");
    }
  }
}

/** `[op, n]` with op one of = < <= > >=, or a range `[">" | ">=", low, "<" | "<=", high]` with low < high. */
function validateNumeric(operand: unknown, path: string): void {
  if (!Array.isArray(operand) || (operand.length !== 2 && operand.length !== 4)) {
    fail(path, 'must be [operator, number] or a range such as [">", 0, "<=", 5]');
  }
  const expected =
    operand.length === 2
      ? [["=", "<", "<=", ">", ">="]]
      : [
          [">", ">="],
          ["<", "<="],
        ];
  expected.forEach((operators, index) => {
    const operator: unknown = operand[2 * index];
    if (typeof operator !== "string" || !operators.includes(operator)) {
      fail(path, `unsupported numeric operator ${JSON.stringify(operator)} (expected ${operators.join(" or ")})`);
    }
    ensure(isFiniteNumber(operand[2 * index + 1]), path, `the value after "${operator}" must be a number`);
  });
  ensure(operand.length === 2 || operand[1] < operand[3], path, "the lower bound must be less than the upper bound");
}

function validateAnythingBut(operand: unknown, path: string): void {
  if (typeof operand === "string" || isFiniteNumber(operand)) return;
  if (Array.isArray(operand)) {
    const sameType = operand.every((value) => typeof value === "string") || operand.every(isFiniteNumber);
    ensure(operand.length > 0 && sameType, path, "a list must be non-empty, with only strings or only numbers");
    return;
  }
  if (!isObject(operand)) fail(path, "must be a string, a number, a list of them, or an operator object");
  const [operator, inner] = onlyEntry(operand, path);
  const operatorPath = `${path}.${operator}`;
  if (!["prefix", "suffix", "wildcard", "equals-ignore-case"].includes(operator)) {
    fail(operatorPath, 'anything-but supports only "prefix", "suffix", "wildcard" or "equals-ignore-case"');
  }
  const operands: unknown[] = Array.isArray(inner) ? inner : [inner];
  ensure(operands.length > 0, operatorPath, "empty arrays are not allowed");
  for (const each of operands) {
    if (operator === "wildcard") validateWildcard(each, operatorPath);
    else requireString(each, operatorPath);
    ensure(each !== "" || (operator !== "prefix" && operator !== "suffix"), operatorPath, "must not be empty");
  }
}
