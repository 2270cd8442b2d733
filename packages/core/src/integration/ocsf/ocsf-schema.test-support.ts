/**
 * A validator for OCSF events against the schema's source form: it resolves an event class
 * through its `extends` chain (class -> category class -> base_event) and `$include`d
 * profiles, takes each attribute's type and enum from the class and the dictionary, and
 * checks objects the same way (`objects/<name>.json`, their `extends` and includes). It
 * reports required attributes that are missing, attributes the class or object does not
 * define, values of the wrong type (with the dictionary's regex, range and length limits) and
 * integer values outside an attribute's enum.
 *
 * It reads the subset of the schema kept in `./schema` (see `scripts/ocsf-extract.ts`).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** An attribute as a class, an object or the dictionary describes it (the source form: any part may be missing). */
interface AttributeSpec {
  readonly type?: string;
  readonly requirement?: string;
  readonly is_array?: boolean;
  readonly enum?: Record<string, unknown>;
}
/** A class's or an object's attributes, with the profiles and other files they `$include`. */
type Attributes = { readonly $include?: readonly string[]; readonly [name: string]: unknown };
interface Constraints {
  readonly at_least_one?: readonly string[];
}
/** An event class or object file. */
interface SchemaFile {
  readonly name: string;
  readonly uid?: number;
  readonly category?: string;
  readonly extends?: string;
  readonly attributes?: Attributes;
  readonly constraints?: Constraints;
}
/** A primitive type of the dictionary (`string_t`, `port_t`, ...): its base type and limits. */
interface TypeSpec {
  readonly type?: string;
  readonly regex?: string;
  readonly max_len?: number;
  readonly range?: readonly [number, number];
}
interface Dictionary {
  readonly types: { readonly attributes: Readonly<Record<string, TypeSpec>> };
  readonly attributes: Readonly<Record<string, AttributeSpec>>;
}
interface AttributeDef {
  readonly name: string;
  readonly type: string;
  readonly requirement: string;
  readonly isArray: boolean;
  readonly enum?: Record<string, unknown>;
}
interface Definition {
  readonly name: string;
  readonly attributes: Map<string, AttributeDef>;
  /** Of which attributes at least one must be present (the schema's `constraints.at_least_one`). */
  readonly atLeastOne?: readonly string[];
}

/** Set by the schema compiler from the class itself (checked in `validate`), not by the source's enums. */
const derived = new Set(["class_uid", "category_uid", "type_uid"]);

export const ocsfSchemaRoot = join(import.meta.dirname, "schema");

export function ocsfSchema(root = ocsfSchemaRoot) {
  const filesRead = new Set<string>();
  const read = <File = SchemaFile>(path: string): File => {
    filesRead.add(path);
    return JSON.parse(readFileSync(join(root, path), "utf8")) as File;
  };
  const dictionary = read<Dictionary>("dictionary.json");
  const types = dictionary.types.attributes;
  const categories = read<{ attributes: Readonly<Record<string, { readonly uid: number }>> }>("categories.json").attributes;
  const eventFiles = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".json")) eventFiles.set(read(path).name, path);
    }
  };
  walk("events");

  /** Profile attributes are required only in events that apply the profile (`metadata.profiles`): none here. */
  function merge(into: Map<string, AttributeSpec>, attributes: Attributes, profile?: string) {
    for (const include of attributes.$include ?? [])
      merge(into, read(include).attributes ?? {}, include.startsWith("profiles/") ? include : profile);
    for (const [name, spec] of Object.entries(attributes)) {
      if (name === "$include") continue;
      const previous = into.get(name) ?? {};
      const demoted = profile && (spec as AttributeSpec).requirement === "required" ? { requirement: "optional" } : {};
      into.set(name, { ...previous, ...(spec as AttributeSpec), ...demoted, enum: (spec as AttributeSpec).enum ?? previous.enum });
    }
  }

  function resolveFile(
    path: string,
    fileOf: (name: string) => string | undefined,
  ): { json: SchemaFile; attributes: Map<string, AttributeSpec> } {
    const json = read(path);
    const attributes = new Map<string, AttributeSpec>();
    const parentPath = json.extends && json.extends !== "object" ? fileOf(json.extends) : undefined;
    if (json.extends && json.extends !== "object" && !parentPath)
      throw new Error(`${path} extends ${json.extends}, which the subset lacks`);
    let category = json.category;
    if (parentPath) {
      const parent = resolveFile(parentPath, fileOf);
      for (const [name, spec] of parent.attributes) attributes.set(name, spec);
      category ??= parent.json.category;
    }
    merge(attributes, json.attributes ?? {});
    const constraints = json.constraints ?? (parentPath ? resolveFile(parentPath, fileOf).json.constraints : undefined);
    return { json: { ...json, category, constraints }, attributes };
  }

  function definition(name: string, attributes: Map<string, AttributeSpec>, constraints?: Constraints): Definition {
    const resolved = new Map<string, AttributeDef>();
    for (const [attribute, spec] of attributes) {
      const entry = dictionary.attributes[attribute] ?? {};
      const type = spec.type ?? entry.type;
      if (!type) throw new Error(`${name}.${attribute} has no type in the dictionary subset`);
      resolved.set(attribute, {
        name: attribute,
        type,
        requirement: spec.requirement ?? "optional",
        isArray: Boolean(spec.is_array ?? entry.is_array),
        enum: spec.enum ?? entry.enum,
      });
    }
    return { name, attributes: resolved, atLeastOne: constraints?.at_least_one };
  }

  const objects = new Map<string, Definition>();
  function objectDefinition(name: string): Definition {
    let found = objects.get(name);
    if (!found) {
      const path = `objects/${name}.json`;
      if (!existsSync(join(root, path))) throw new Error(`object ${name} is not in the schema subset`);
      const resolved = resolveFile(path, (parent) =>
        existsSync(join(root, `objects/${parent}.json`)) ? `objects/${parent}.json` : undefined,
      );
      found = definition(name, resolved.attributes, resolved.json.constraints);
      objects.set(name, found);
    }
    return found;
  }

  // Which file holds which class uid (category uid * 1000 + class uid); classes resolve on first use.
  const classFiles = new Map<number, string>();
  for (const path of eventFiles.values()) {
    const json = read(path);
    let category = json.category;
    for (let parent = json.extends; !category && parent; ) {
      const parentJson = read(eventFiles.get(parent)!);
      category = parentJson.category;
      parent = parentJson.extends;
    }
    if (json.uid !== undefined && category) classFiles.set(categories[category]!.uid * 1000 + json.uid, path);
  }
  filesRead.clear();
  filesRead.add("dictionary.json").add("categories.json");
  const classes = new Map<number, Definition>();
  function classDefinition(uid: number): Definition | undefined {
    const path = classFiles.get(uid);
    if (!path) return undefined;
    let found = classes.get(uid);
    if (!found) {
      const resolved = resolveFile(path, (parent) => eventFiles.get(parent));
      found = definition(resolved.json.name, resolved.attributes);
      classes.set(uid, found);
    }
    return found;
  }

  function checkPrimitive(type: string, value: unknown): string | undefined {
    const spec = types[type] ?? {};
    const base = spec.type ?? type;
    if (base !== type) {
      const problem = checkPrimitive(base, value);
      if (problem) return problem;
    }
    if (spec.regex && typeof value === "string" && !new RegExp(spec.regex).test(value)) return `does not match ${type}`;
    if (spec.max_len && typeof value === "string" && value.length > spec.max_len) return `is longer than ${spec.max_len}`;
    if (spec.range && typeof value === "number" && (value < spec.range[0] || value > spec.range[1]))
      return `is outside ${spec.range.join("..")}`;
    switch (type) {
      case "string_t":
        return typeof value === "string" ? undefined : "is not a string";
      case "integer_t":
      case "long_t":
        return Number.isInteger(value) ? undefined : "is not an integer";
      case "float_t":
        return typeof value === "number" ? undefined : "is not a number";
      case "boolean_t":
        return typeof value === "boolean" ? undefined : "is not a boolean";
      case "json_t":
        return undefined;
    }
    return spec.type || type in types ? undefined : `has unknown type ${type}`;
  }

  function check(definition: Definition, value: Readonly<Record<string, unknown>>, path: string, problems: string[]) {
    for (const [name, attribute] of definition.attributes) {
      if (attribute.requirement === "required" && (value[name] === undefined || value[name] === null))
        problems.push(`${path}${name} is required`);
    }
    if (definition.atLeastOne && !definition.atLeastOne.some((name) => value[name] !== undefined && value[name] !== null)) {
      problems.push(`${path || "event: "}${definition.name} needs at least one of ${definition.atLeastOne.join(", ")}`);
    }
    for (const [name, item] of Object.entries(value)) {
      const attribute = definition.attributes.get(name);
      if (!attribute) {
        problems.push(`${path}${name} is not an attribute of ${definition.name}`);
        continue;
      }
      if (attribute.isArray && !Array.isArray(item)) {
        problems.push(`${path}${name} is not an array`);
        continue;
      }
      const items = attribute.isArray ? (item as unknown[]) : [item];
      items.forEach((each, index) => {
        const at = `${path}${name}${attribute.isArray ? `[${index}]` : ""}`;
        if (attribute.type.endsWith("_t")) {
          const problem = checkPrimitive(attribute.type, each);
          if (problem) problems.push(`${at} ${problem}`);
          else if (attribute.enum && attribute.type.startsWith("integer") && !derived.has(name) && !(String(each) in attribute.enum)) {
            problems.push(`${at} = ${String(each)} is not in its enum (${Object.keys(attribute.enum).join(", ")})`);
          }
        } else if (typeof each !== "object" || each === null || Array.isArray(each)) {
          problems.push(`${at} is not a ${attribute.type} object`);
        } else if (attribute.type !== "object") {
          check(objectDefinition(attribute.type), each as Record<string, unknown>, `${at}.`, problems);
        }
      });
    }
  }

  return {
    /** The schema files read so far (what the repository's subset must keep). */
    filesRead,
    /** The problems of one event against the class its `class_uid` names; empty when it conforms. */
    validate(event: Readonly<Record<string, unknown>>): string[] {
      // Read as the numbers they should be: a value of another type finds no class, or fails the comparisons below.
      const classUid = event.class_uid as number;
      const definition = classDefinition(classUid);
      if (!definition) return [`class_uid ${String(event.class_uid)} is not a class of the schema subset`];
      const problems: string[] = [];
      check(definition, event, "", problems);
      if (event.category_uid !== Math.floor(classUid / 1000))
        problems.push(`category_uid ${event.category_uid} is not the class's category`);
      const expectedType = classUid * 100 + (event.activity_id as number);
      if (event.type_uid !== expectedType)
        problems.push(`type_uid ${event.type_uid} is not class_uid * 100 + activity_id (${expectedType})`);
      return problems;
    },
  };
}
