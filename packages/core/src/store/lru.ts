/**
 * A small least-recently-used map: `get` refreshes an entry, `set` evicts the oldest past
 * `capacity` entries or, when entries are weighed, past `maxWeight` in total.
 */
export class Lru<Key, Value> {
  readonly #entries = new Map<Key, { value: Value; weight: number }>();
  readonly #capacity: number;
  readonly #maxWeight: number;
  readonly #weigh: (value: Value) => number;
  #weight = 0;

  constructor(capacity: number, weighed?: { readonly maxWeight: number; readonly weigh: (value: Value) => number }) {
    this.#capacity = capacity;
    this.#maxWeight = weighed?.maxWeight ?? Number.POSITIVE_INFINITY;
    this.#weigh = weighed?.weigh ?? (() => 0);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The total weight held (0 when entries are not weighed). */
  get weight(): number {
    return this.#weight;
  }

  /** Whether `key` is held (its place is left as it is). */
  has(key: Key): boolean {
    return this.#entries.has(key);
  }

  get(key: Key): Value | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.value;
  }

  set(key: Key, value: Value): void {
    this.delete(key);
    const weight = this.#weigh(value);
    // An entry heavier than the whole budget is not kept at all.
    if (weight > this.#maxWeight) return;
    this.#entries.set(key, { value, weight });
    this.#weight += weight;
    while (this.#entries.size > this.#capacity || this.#weight > this.#maxWeight) {
      this.delete(this.#entries.keys().next().value as Key);
    }
  }

  delete(key: Key): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#weight -= entry.weight;
  }
}
