/**
 * A batch is bounded before its items are read (review 78): a 1 MiB body of 524,000 one-byte items
 * (`[1,1,...]`) was validated item by item, 12-15 s of CPU and 140-450 MB of heap, and refused with an
 * answer listing every item (58 MB of JSON), for any authenticated sender. A body listing more items than
 * a request may carry events is refused as a whole (413 `ingest.too_many_events`) before any is validated.
 */
import { describe, expect, it } from "vitest";
import { maxEventsPerRequest } from "../backlog.ts";
import type { IngestFormat } from "../adapter.ts";
import { adapters } from "./index.ts";
import { ingestRequest, thrown } from "./test-support.ts";

const ones = (count: number) => `[${Array(count).fill("1").join(",")}]`;

const bodies: Record<IngestFormat, (count: number) => string> = {
  simroot: ones,
  camara: ones,
  datastreamer: ones,
  supersim: ones,
  nef: (count) => `{"subscription":"s","monitoringEventReports":${ones(count)}}`,
  eim: (count) => `{"eid":"89049032123451234512345678901235","notifications":${ones(count)}}`,
};

const nefConnections = (count: number) =>
  JSON.stringify({
    subscription: "s",
    monitoringEventReports: [
      { monitoringType: "PDN_CONNECTIVITY_STATUS", msisdn: "+4912345678", pdnConnInfoList: Array(count).fill({ status: "X" }) },
    ],
  });

describe("a batch is bounded before its items are read", () => {
  it.each(Object.keys(bodies) as IngestFormat[])(
    `%s: a body of more than ${maxEventsPerRequest} items is refused as a whole with 413`,
    (format) => {
      const error = thrown(() => adapters[format].parse(ingestRequest(bodies[format](maxEventsPerRequest + 1), {}), {}));
      expect(error.code).toBe("ingest.too_many_events");
      expect(error.detail.status).toBe(413);
      expect(error.issues).toEqual([]);
    },
  );

  it.each(Object.keys(bodies) as IngestFormat[])(`%s: ${maxEventsPerRequest} items are still read one by one`, (format) => {
    const items = adapters[format].parse(ingestRequest(bodies[format](maxEventsPerRequest), {}), {});
    expect(items).toHaveLength(maxEventsPerRequest);
  });

  it("nef: a report listing more PDN connections than a request may carry events is refused with 413", () => {
    const error = thrown(() => adapters.nef.parse(ingestRequest(nefConnections(maxEventsPerRequest + 1), {}), {}));
    expect(error.code).toBe("ingest.too_many_events");
  });

  it("refuses a 1 MiB body of one-byte items at once, with a short answer", () => {
    const started = performance.now();
    const error = thrown(() => adapters.camara.parse(ingestRequest(ones(524_000), {}), {}));
    expect(error.code).toBe("ingest.too_many_events");
    expect(JSON.stringify(error.issues).length).toBeLessThan(1000);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
