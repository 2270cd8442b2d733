/**
 * A simulated operator core and eSIM manager: sends what real senders send, in each of the six
 * webhook formats simroot accepts, signed or authenticated as each sender does (Standard
 * Webhooks, bearer tokens, HTTP Basic, X-Twilio-Signature).
 */
import { createHash, createHmac, randomUUID } from "node:crypto";
import type { DemoDevice } from "./fleet.ts";
import { imeiFor } from "./fleet.ts";

export interface DemoSource {
  readonly id: string;
  readonly format: string;
  readonly credentials: Record<string, string>;
}

export type Sender = (device: DemoDevice, now: Date) => Promise<void>;

const mccs = [
  { mcc: "214", iso: "ES" },
  { mcc: "262", iso: "DE" },
  { mcc: "268", iso: "PT" },
  { mcc: "222", iso: "IT" },
];
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

export function operatorCore(baseUrl: string, sources: Readonly<Record<string, DemoSource>>) {
  const sent = new Map<string, number>();
  const seq = new Map<string, number>();

  async function post(format: string, body: string, headers: Record<string, string>, query = "") {
    const source = sources[format]!;
    const url = `${baseUrl}/v1/ingest/${source.id}${query}`;
    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
    if (!response.ok) throw new Error(`${format} webhook: HTTP ${response.status} ${await response.text()}`);
    sent.set(format, (sent.get(format) ?? 0) + 1);
  }

  const simroot = (events: unknown[]) => {
    const body = JSON.stringify(events);
    const id = `msg_${randomUUID()}`;
    const timestamp = Math.floor(Date.now() / 1000);
    const key = Buffer.from(sources.simroot!.credentials.webhookSecret!.replace(/^whsec_/, ""), "base64");
    const signature = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64");
    return post("simroot", body, { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": `v1,${signature}` });
  };
  const bearer = (format: string, body: unknown) =>
    post(format, JSON.stringify(body), { authorization: `Bearer ${sources[format]!.credentials.bearerToken}` });
  const camara = (api: string, name: string, data: Record<string, unknown>, now: Date) =>
    bearer("camara", {
      id: randomUUID(),
      source: "https://camara.operator.example",
      type: `org.camaraproject.${api}.v0.${name}`,
      specversion: "1.0",
      time: now.toISOString(),
      data,
    });
  const nef = (report: Record<string, unknown>) =>
    bearer("nef", {
      subscription: "https://nef.operator.example/3gpp-monitoring-event/v1/simroot/subscriptions/demo",
      monitoringEventReports: [report],
    });
  const datastreamer = (record: Record<string, unknown>) => {
    const { basicUser, basicPassword } = sources.datastreamer!.credentials;
    return post("datastreamer", JSON.stringify([record]), {
      authorization: `Basic ${Buffer.from(`${basicUser}:${basicPassword}`).toString("base64")}`,
    });
  };
  const supersim = (device: DemoDevice, kind: string, now: Date, extra: Record<string, unknown> = {}) => {
    const body = JSON.stringify([
      {
        id: randomUUID(),
        source: "CObxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        type: `com.twilio.iot.supersim.connection.${kind}`,
        time: now.toISOString(),
        data: { sim_iccid: device.iccid, imei: device.imei, timestamp: now.toISOString(), ...extra },
      },
    ]);
    const query = `?bodySHA256=${createHash("sha256").update(body).digest("hex")}`;
    const url = `${baseUrl}/v1/ingest/${sources.supersim!.id}${query}`;
    const signature = createHmac("sha1", sources.supersim!.credentials.twilioAuthToken!).update(url).digest("base64");
    return post("supersim", body, { "x-twilio-signature": signature }, query);
  };
  const eim = (device: DemoDevice, operation: string, now: Date) => {
    const next = (seq.get(device.eid) ?? 0) + 1;
    seq.set(device.eid, next);
    return bearer("eim", {
      eid: device.eid,
      notifications: [{ seqNumber: next, operation, iccid: device.iccid, result: "success", timestamp: now.toISOString() }],
    });
  };

  /** The everyday traffic: attaches with an address, bearer switches, reachability, profile confirmations. */
  const everyday: Sender[] = [
    (d, now) =>
      simroot([
        {
          type: "sim.attached",
          dedupeKey: randomUUID(),
          occurredAt: now.toISOString(),
          device: { imsi: d.imsi },
          sourceType: "demo.attach",
          data: { bearer: "cellular", rat: "LTE-M", apn: "fleet.iot", ipv4: d.ip, plmn: { mcc: "208", mnc: "01" } },
        },
      ]),
    (d, now) =>
      simroot([
        {
          type: "bearer.switched",
          dedupeKey: randomUUID(),
          occurredAt: now.toISOString(),
          device: { imsi: d.imsi },
          sourceType: "demo.switch",
          data: { bearer: pick(["wifi", "private-5g", "cellular"] as const), ipv4: d.ip },
        },
      ]),
    (d, now) =>
      nef({
        msisdn: d.msisdn.slice(1),
        monitoringType: "PDN_CONNECTIVITY_STATUS",
        eventTime: now.toISOString(),
        ratType: "NR",
        pdnConnInfoList: [{ status: "CREATED", apn: "fleet.iot", pdnType: "IPV4", ipv4Addr: d.ip }],
      }),
    (d, now) =>
      datastreamer({
        id: Math.floor(Math.random() * 1e9),
        timestamp: now.toISOString(),
        event_type: { id: 3, description: "Create PDP Context" },
        event_source: { id: 0, description: "Network" },
        endpoint: { imei: d.imei, ip_address: d.ip },
        sim: { iccid: d.iccid },
        imsi: { imsi: d.imsi },
        detail: { pdp_context: { apn: "fleet.iot", ue_ip_address: d.ip, rat_type: 6, mcc: "208", mnc: "01" } },
      }),
    (d, now) =>
      supersim(d, "data-session.started", now, {
        ip_address: d.ip,
        apn: "super",
        rat_type: "4G LTE",
        network: { mcc: "208", mnc: "01", iso_country: "FR" },
      }),
    (d, now) =>
      camara(
        "connected-network-type-subscriptions",
        "network-type-changed",
        { device: { phoneNumber: d.msisdn }, connectedNetworkType: "5G" },
        now,
      ),
    (d, now) => camara("device-reachability-status-subscriptions", "reachability-data", { device: { phoneNumber: d.msisdn } }, now),
    (d, now) => eim(d, "enable", now),
    (d, now) =>
      nef({
        msisdn: d.msisdn.slice(1),
        monitoringType: "ROAMING_STATUS",
        eventTime: now.toISOString(),
        roamingStatus: false,
        plmnId: { mcc: "208", mnc: "01" },
      }),
  ];

  /** What now and then goes wrong: roaming abroad, detaches, IMEI changes (a SIM moved to another modem), profile switches. */
  const unusual: Sender[] = [
    (d, now) => {
      const visited = pick(mccs);
      return camara(
        "device-roaming-status-subscriptions",
        "roaming-status",
        { device: { phoneNumber: d.msisdn }, roaming: true, countryCode: Number(visited.mcc), countryName: [visited.iso] },
        now,
      );
    },
    (d, now) =>
      datastreamer({
        id: Math.floor(Math.random() * 1e9),
        timestamp: now.toISOString(),
        event_type: { id: 5, description: "Delete PDP Context" },
        endpoint: { imei: d.imei, ip_address: d.ip },
        sim: { iccid: d.iccid },
        imsi: { imsi: d.imsi },
      }),
    (d, now) =>
      camara(
        "iot-sim-fraud-prevention-subscriptions",
        "imei-change",
        { device: { phoneNumber: d.msisdn }, imei: imeiFor(d.index, 7), previousImei: d.imei },
        now,
      ),
    (d, now) => supersim(d, "data-session.ended", now, { rat_type: "4G LTE" }),
    (d, now) => eim(d, "disable", now),
  ];

  return {
    sent,
    everyday: (device: DemoDevice, now = new Date()) => pick(everyday)(device, now),
    unusual: (device: DemoDevice, now = new Date()) => pick(unusual)(device, now),
    /** One event of every sender, for a device (the demo's first minute shows every format). */
    async everyFormat(device: DemoDevice, now = new Date()) {
      for (const send of everyday) await send(device, now);
    },
  };
}
