/**
 * Label selectors with Kubernetes semantics: every `matchLabels` pair and every expression
 * must hold; `NotIn` also matches when the key is absent; an empty selector matches all.
 */
import type { LabelSelector } from "./model.ts";

export type Labels = Readonly<Record<string, string>>;
export type LabelPredicate = (labels: Labels) => boolean;

/** Own properties only: a label named `constructor` must not find Object.prototype's. */
const labelOf = (labels: Labels, key: string): string | undefined => (Object.hasOwn(labels, key) ? labels[key] : undefined);

export function compileSelector(selector: LabelSelector): LabelPredicate {
  const checks: LabelPredicate[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    checks.push((labels) => labelOf(labels, key) === value);
  }
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const set = new Set(values);
    switch (operator) {
      case "In":
        checks.push((labels) => {
          const value = labelOf(labels, key);
          return value !== undefined && set.has(value);
        });
        break;
      case "NotIn":
        checks.push((labels) => {
          const value = labelOf(labels, key);
          return value === undefined || !set.has(value);
        });
        break;
      case "Exists":
        checks.push((labels) => Object.hasOwn(labels, key));
        break;
      case "DoesNotExist":
        checks.push((labels) => !Object.hasOwn(labels, key));
        break;
    }
  }
  return (labels) => checks.every((check) => check(labels));
}

const canonical = (entries: [string, string][]) => JSON.stringify(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/**
 * A stable string for a label set: equal label sets give equal keys whatever the key order.
 * Length-prefixed, so no key or value can forge a separator. On the decision path for
 * unfrozen labels, hence the plain loop.
 */
export function labelSetKey(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length > 1) keys.sort();
  let key = "";
  for (let i = 0; i < keys.length; i++) {
    const name = keys[i]!;
    const value = labels[name]!;
    key += `${name.length}:${name}${value.length}:${value}`;
  }
  return key;
}

/** A canonical string for a selector, so that rules sharing a selector share its evaluation. */
export function selectorKey(selector: LabelSelector): string {
  const labels = canonical(Object.entries(selector.matchLabels ?? {}));
  const expressions = (selector.matchExpressions ?? [])
    .map(({ key, operator, values = [] }) => JSON.stringify([key, operator, [...new Set(values)].sort()]))
    .sort();
  return `${labels}|${expressions.join(",")}`;
}
