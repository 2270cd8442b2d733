/**
 * Payloads follow the notification examples of the camaraproject API definitions:
 * - DeviceRoamingStatus code/API_definitions/device-roaming-status-subscriptions.yaml
 *   (ROAMING_STATUS, ROAMING_ON, ROAMING_OFF, ROAMING_CHANGE_COUNTRY with countryCode 214 /
 *   countryName ["ES"], SUBSCRIPTION_ENDS),
 * - DeviceStatus code/API_definitions/device-reachability-status-subscriptions.yaml
 *   (REACHABILITY_DATA, REACHABILITY_SMS, REACHABILITY_DISCONNECTED),
 * - ConnectedNetworkType code/API_definitions/connected-network-type-subscriptions.yaml
 *   (NETWORK_TYPE_CHANGED, connectedNetworkType 5G),
 * - SimSwap code/API_definitions/sim-swap-subscriptions.yaml (SWAPPED: data.phoneNumber),
 * - IoTSIMFraudPrevention code/API_definitions/iot-sim-fraud-prevention-subscriptions.yaml
 *   (IMEI_CHANGE with imei "35-209900-176148-1", AREA_CHANGE with a CIRCLE area, and the
 *   subscription-started/-updated/-ended lifecycle schemas).
 * Phone numbers are lengthened to real E.164 numbers where the examples use short placeholders.
 */
import { describe, expect, it } from "vitest";
import type { IngestRequest } from "../adapter.ts";
import { camaraAdapter } from "./camara.ts";
import { authFailure, ingestRequest, invalidBodyFailure, now, onlyEvent, thrown } from "./test-support.ts";

const token = "camara-sink-token-3f9a1c7e";
const source = "https://notificationSendServer12.supertelco.com";
const phoneNumber = "+34600123456";

/** `null` sends no Authorization header. */
function request(body: unknown, authorization: string | null = `Bearer ${token}`): IngestRequest {
  return ingestRequest(body, { "content-type": "application/cloudevents+json", ...(authorization === null ? {} : { authorization }) });
}

function cloudEvent(type: string, data: Record<string, unknown>, overrides: Record<string, unknown> = {}) {
  return {
    id: "123654",
    source,
    type,
    specversion: "1.0",
    datacontenttype: "application/json",
    data,
    time: "2023-01-17T13:18:23.682Z",
    ...overrides,
  };
}

const parsedEvent = (body: unknown) => onlyEvent(camaraAdapter.parse(request(body)));

describe("camara adapter: authentication", () => {
  it("accepts the subscription's bearer token", () => {
    expect(() => camaraAdapter.authenticate(request({}), { bearerToken: token })).not.toThrow();
    expect(() => camaraAdapter.authenticate(request({}, `bearer ${token}`), { bearerToken: token })).not.toThrow();
  });

  it.each([
    ["a forged token", `Bearer ${token}x`],
    ["another scheme", `Basic ${Buffer.from(`user:${token}`).toString("base64")}`],
    ["an empty bearer", "Bearer "],
    ["no Authorization header", null],
  ])("refuses %s with an auth error", (_, authorization) => {
    authFailure(() => camaraAdapter.authenticate(request({}, authorization), { bearerToken: token }));
  });

  it("refuses everything when the source has no token configured", () => {
    expect(thrown(() => camaraAdapter.authenticate(request({}), {})).kind).toBe("auth");
  });
});

describe("camara adapter: device roaming status", () => {
  it("maps roaming-status with the visited MCC and its country", () => {
    const event = parsedEvent(
      cloudEvent("org.camaraproject.device-roaming-status-subscriptions.v0.roaming-status", {
        device: { phoneNumber },
        roaming: true,
        countryCode: 262,
        countryName: ["DE"],
        subscriptionId: "qs15-h556-rt89-1298",
      }),
    );
    expect(event).toEqual({
      type: "device.roaming-changed",
      dedupeKey: `${source}|123654`,
      occurredAt: "2023-01-17T13:18:23.682Z",
      device: { msisdn: phoneNumber },
      data: { roaming: true, mcc: "262", country: "DE" },
      sourceType: "org.camaraproject.device-roaming-status-subscriptions.v0.roaming-status",
    });
  });

  it("maps roaming-status false without a country (the device is home)", () => {
    const event = parsedEvent(
      cloudEvent("org.camaraproject.device-roaming-status-subscriptions.v0.roaming-status", {
        device: { phoneNumber },
        roaming: false,
        subscriptionId: "s",
      }),
    );
    expect(event.type).toBe("device.roaming-changed");
    expect(event.data).toEqual({ roaming: false });
  });

  it("refuses roaming-status without its roaming flag, naming it", () => {
    const [item] = camaraAdapter.parse(
      request(
        cloudEvent("org.camaraproject.device-roaming-status-subscriptions.v0.roaming-status", {
          device: { phoneNumber },
          subscriptionId: "s",
        }),
      ),
    );
    expect(item).toEqual({ index: 0, ok: false, issues: [{ path: "data.roaming", message: expect.any(String) }] });
  });

  it("maps roaming-on and roaming-off (no roaming flag in their data)", () => {
    const on = parsedEvent(
      cloudEvent(
        "org.camaraproject.device-roaming-status-subscriptions.v0.roaming-on",
        { device: { phoneNumber }, subscriptionId: "s" },
        { id: "123656" },
      ),
    );
    expect(on.data).toEqual({ roaming: true });
    expect(on.dedupeKey).toBe(`${source}|123656`);
    const off = parsedEvent(
      cloudEvent(
        "org.camaraproject.device-roaming-status-subscriptions.v0.roaming-off",
        { device: { phoneNumber }, subscriptionId: "s" },
        { id: "123655" },
      ),
    );
    expect(off.data).toEqual({ roaming: false });
  });

  it("maps roaming-change-country: zero-pads the integer MCC and names the country", () => {
    const event = parsedEvent(
      cloudEvent("org.camaraproject.device-roaming-status-subscriptions.v0.roaming-change-country", {
        device: { phoneNumber },
        countryCode: 214,
        countryName: ["ES"],
        subscriptionId: "qs15-h556-rt89-1298",
      }),
    );
    expect(event.data).toEqual({ roaming: true, mcc: "214", country: "ES" });
    const padded = parsedEvent(
      cloudEvent("org.camaraproject.device-roaming-status-subscriptions.v1.roaming-change-country", {
        device: { phoneNumber },
        countryCode: 1,
        countryName: [],
        subscriptionId: "s",
      }),
    );
    expect(padded.data).toEqual({ roaming: true, mcc: "001" });
  });

  it("falls back to a single countryName when the MCC names several countries", () => {
    const event = parsedEvent(
      cloudEvent("org.camaraproject.device-roaming-status-subscriptions.v0.roaming-change-country", {
        device: { phoneNumber },
        countryCode: 340,
        countryName: ["MQ"],
        subscriptionId: "s",
      }),
    );
    expect(event.data).toEqual({ roaming: true, mcc: "340", country: "MQ" });
  });

  it("refuses a countryCode that is no MCC", () => {
    const [item] = camaraAdapter.parse(
      request(
        cloudEvent("org.camaraproject.device-roaming-status-subscriptions.v0.roaming-on", {
          device: { phoneNumber },
          countryCode: 2620,
          subscriptionId: "s",
        }),
      ),
    );
    expect(item?.ok).toBe(false);
    expect(item && !item.ok && item.issues.map((issue) => issue.path)).toEqual(["data.countryCode"]);
  });

  it("matches the event name whatever the version or API part of the type", () => {
    const event = parsedEvent(
      cloudEvent("org.camaraproject.device-status.v1.roaming-off", { device: { phoneNumber }, subscriptionId: "s" }),
    );
    expect(event.type).toBe("device.roaming-changed");
    expect(event.sourceType).toBe("org.camaraproject.device-status.v1.roaming-off");
  });
});

describe("camara adapter: device reachability status", () => {
  it.each([
    ["reachability-data", { reachable: true, via: "data" }],
    ["reachability-sms", { reachable: true, via: "sms" }],
    ["reachability-disconnected", { reachable: false }],
  ])("maps %s", (name, data) => {
    const event = parsedEvent(
      cloudEvent(`org.camaraproject.device-reachability-status-subscriptions.v0.${name}`, {
        device: { phoneNumber },
        subscriptionId: "qs15-h556-rt89-1298",
      }),
    );
    expect(event.type).toBe("device.reachability-changed");
    expect(event.data).toEqual(data);
  });
});

describe("camara adapter: other APIs", () => {
  it("records connected-network-type network-type-changed as unhandled with the network type", () => {
    const event = parsedEvent(
      cloudEvent("org.camaraproject.connected-network-type-subscriptions.v0.network-type-changed", {
        subscriptionId: "987654321",
        device: { phoneNumber },
        connectedNetworkType: "5G",
      }),
    );
    expect(event.type).toBe("source.unhandled");
    expect(event.data).toEqual({
      sourceType: "org.camaraproject.connected-network-type-subscriptions.v0.network-type-changed",
      summary: { connectedNetworkType: "5G", subscriptionId: "987654321" },
    });
  });

  it("suspends the device on a SIM swap (data.phoneNumber, no device object)", () => {
    const event = parsedEvent(
      cloudEvent(
        "org.camaraproject.sim-swap-subscriptions.v0.swapped",
        { phoneNumber, subscriptionId: "2ghy-55gg-7iup-yuo9" },
        { source: "supertelco.notificationSendServer12", id: "123655" },
      ),
    );
    expect(event).toEqual({
      type: "device.suspended",
      dedupeKey: "supertelco.notificationSendServer12|123655",
      occurredAt: "2023-01-17T13:18:23.682Z",
      device: { msisdn: phoneNumber },
      data: { reason: "sim swap reported by operator" },
      sourceType: "org.camaraproject.sim-swap-subscriptions.v0.swapped",
    });
  });

  it("maps iot-sim-fraud-prevention imei-change to an equipment change, digits only", () => {
    const event = parsedEvent(
      cloudEvent(
        "org.camaraproject.iot-sim-fraud-prevention-subscriptions.v0.imei-change",
        { subscriptionId: "987654321", imei: "35-209900-176148-1", device: { phoneNumber } },
        { id: "b4333c46-49c0-4f62-80d7-f0ef930f1c46", source: "https://api.example.com", time: "2023-03-22T05:40:23.682Z" },
      ),
    );
    expect(event).toEqual({
      type: "device.equipment-changed",
      dedupeKey: "https://api.example.com|b4333c46-49c0-4f62-80d7-f0ef930f1c46",
      occurredAt: "2023-03-22T05:40:23.682Z",
      device: { msisdn: phoneNumber },
      data: { imei: "352099001761481" },
      sourceType: "org.camaraproject.iot-sim-fraud-prevention-subscriptions.v0.imei-change",
    });
  });

  it("keeps the previous IMEI when a provider adds it", () => {
    const event = parsedEvent(
      cloudEvent("org.camaraproject.iot-sim-fraud-prevention.v0.imei-change", {
        subscriptionId: "s",
        imei: "352099001761481",
        previousImei: "490154203237518",
        device: { phoneNumber },
      }),
    );
    expect(event.data).toEqual({ imei: "352099001761481", previousImei: "490154203237518" });
  });

  it("refuses an imei-change without a usable IMEI", () => {
    const [item] = camaraAdapter.parse(
      request(
        cloudEvent("org.camaraproject.iot-sim-fraud-prevention.v0.imei-change", {
          subscriptionId: "s",
          imei: "unknown",
          device: { phoneNumber },
        }),
      ),
    );
    expect(item).toEqual({ index: 0, ok: false, issues: [{ path: "data.imei", message: expect.any(String) }] });
  });

  it("records area-change as unhandled with the area", () => {
    const area = { areaType: "CIRCLE", center: { latitude: 50.735851, longitude: 7.10066 }, radius: 2000 };
    const event = parsedEvent(
      cloudEvent("org.camaraproject.iot-sim-fraud-prevention-subscriptions.v0.area-change", {
        subscriptionId: "987654321",
        area,
        device: { phoneNumber },
      }),
    );
    expect(event.type).toBe("source.unhandled");
    expect(event.data).toEqual({
      sourceType: "org.camaraproject.iot-sim-fraud-prevention-subscriptions.v0.area-change",
      summary: { area, subscriptionId: "987654321" },
    });
  });

  it.each(["subscription-started", "subscription-updated", "subscription-ended", "subscription-ends"])(
    "records the %s lifecycle event as unhandled when it names the device",
    (name) => {
      const event = parsedEvent(
        cloudEvent(`org.camaraproject.device-roaming-status-subscriptions.v0.${name}`, {
          device: { phoneNumber },
          terminationReason: "SUBSCRIPTION_EXPIRED",
          subscriptionId: "qs15",
        }),
      );
      expect(event.type).toBe("source.unhandled");
      expect(event.data).toEqual({
        sourceType: `org.camaraproject.device-roaming-status-subscriptions.v0.${name}`,
        summary: { subscriptionId: "qs15", terminationReason: "SUBSCRIPTION_EXPIRED" },
      });
    },
  );

  it("accepts a lifecycle event that names no device, with nothing to record", () => {
    const items = camaraAdapter.parse(
      request(
        cloudEvent("org.camaraproject.iot-sim-fraud-prevention-subscriptions.v0.subscription-started", {
          initiationReason: "SUBSCRIPTION_CREATED",
          subscriptionId: "1119920371",
        }),
      ),
    );
    expect(items).toEqual([{ index: 0, ok: true, events: [] }]);
  });

  it("records unknown types, even outside org.camaraproject, as unhandled", () => {
    const unknown = parsedEvent(
      cloudEvent("org.camaraproject.device-location-subscriptions.v0.area-entered", { device: { phoneNumber }, subscriptionId: "s" }),
    );
    expect(unknown.type).toBe("source.unhandled");
    expect(unknown.data).toEqual({
      sourceType: "org.camaraproject.device-location-subscriptions.v0.area-entered",
      summary: { subscriptionId: "s" },
    });
    const foreign = parsedEvent(cloudEvent("com.example.something", { device: { phoneNumber } }));
    expect(foreign.data).toEqual({ sourceType: "com.example.something" });
  });
});

describe("camara adapter: devices and envelopes", () => {
  const reachable = "org.camaraproject.device-reachability-status-subscriptions.v0.reachability-data";

  it("maps every CAMARA device identifier, preferring the private IPv4 address", () => {
    const event = parsedEvent(
      cloudEvent(reachable, {
        device: {
          phoneNumber,
          networkAccessIdentifier: "123456789@domain.com",
          ipv4Address: { publicAddress: "84.125.93.10", privateAddress: "10.20.0.7" },
          ipv6Address: "2001:db8:85a3:8d3:1319:8a2e:370:7344",
        },
        subscriptionId: "s",
      }),
    );
    expect(event.device).toEqual({ msisdn: phoneNumber, externalId: "123456789@domain.com", ip: "10.20.0.7" });
  });

  it("uses the public IPv4 address, then the IPv6 address, when that is all there is", () => {
    expect(
      parsedEvent(
        cloudEvent(reachable, { device: { ipv4Address: { publicAddress: "84.125.93.10", publicPort: 59765 } }, subscriptionId: "s" }),
      ).device,
    ).toEqual({ ip: "84.125.93.10" });
    expect(parsedEvent(cloudEvent(reachable, { device: { ipv6Address: "2001:db8::7344" }, subscriptionId: "s" })).device).toEqual({
      ip: "2001:db8::7344",
    });
  });

  it("refuses malformed device identifiers, naming them", () => {
    const [item] = camaraAdapter.parse(
      request(
        cloudEvent(reachable, { device: { phoneNumber: "call me", ipv4Address: { privateAddress: "10.300.0.1" } }, subscriptionId: "s" }),
      ),
    );
    expect(item?.ok).toBe(false);
    expect(item && !item.ok && item.issues.map((issue) => issue.path).sort()).toEqual([
      "data.device.ipv4Address.privateAddress",
      "data.device.phoneNumber",
    ]);
  });

  it("uses now when the event has no time", () => {
    const withoutTime: Record<string, unknown> = cloudEvent(reachable, { device: { phoneNumber }, subscriptionId: "s" });
    delete withoutTime["time"];
    expect(parsedEvent(withoutTime).occurredAt).toBe(now.toISOString());
  });

  it.each(["specversion", "id", "source", "type"])("refuses a CloudEvent without %s, naming it", (attribute) => {
    const event: Record<string, unknown> = cloudEvent(reachable, { device: { phoneNumber }, subscriptionId: "s" });
    delete event[attribute];
    const [item] = camaraAdapter.parse(request(event));
    expect(item).toEqual({ index: 0, ok: false, issues: [{ path: attribute, message: expect.stringContaining(attribute) }] });
  });

  it("refuses other CloudEvents versions and malformed times", () => {
    const [oldVersion] = camaraAdapter.parse(request(cloudEvent(reachable, { device: { phoneNumber } }, { specversion: "0.3" })));
    expect(oldVersion && !oldVersion.ok && oldVersion.issues.map((issue) => issue.path)).toEqual(["specversion"]);
    const [badTime] = camaraAdapter.parse(request(cloudEvent(reachable, { device: { phoneNumber } }, { time: "yesterday" })));
    expect(badTime && !badTime.ok && badTime.issues.map((issue) => issue.path)).toEqual(["time"]);
  });

  it("reports a batch per item", () => {
    const good = cloudEvent(reachable, { device: { phoneNumber }, subscriptionId: "s" }, { id: "1" });
    const noId: Record<string, unknown> = cloudEvent(reachable, { device: { phoneNumber }, subscriptionId: "s" });
    delete noId["id"];
    const disconnected = cloudEvent(
      "org.camaraproject.device-reachability-status-subscriptions.v0.reachability-disconnected",
      { device: { phoneNumber } },
      { id: "3" },
    );
    const items = camaraAdapter.parse(request([good, noId, disconnected, 17]));
    expect(items.map((item) => [item.index, item.ok])).toEqual([
      [0, true],
      [1, false],
      [2, true],
      [3, false],
    ]);
    expect(items[1]).toEqual({ index: 1, ok: false, issues: [{ path: "id", message: expect.any(String) }] });
    const third = items[2];
    expect(third?.ok && third.events.map((event) => [event.dedupeKey, event.data])).toEqual([[`${source}|3`, { reachable: false }]]);
  });

  it("throws ingest.invalid_body for a body that is not JSON or not an object or array", () => {
    for (const body of ["<xml/>", "", '"a string"', "12", "null"]) invalidBodyFailure(() => camaraAdapter.parse(request(body)));
  });
});
