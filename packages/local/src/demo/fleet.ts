/**
 * The demo fleet: a few hundred devices with well-formed SIM identities (EIDs with their
 * MOD 97 check digits, Luhn ICCIDs and IMEIs), labelled by fleet and site, each with the
 * destinations it normally talks to; and the policies that allow exactly those.
 */
import { eidValid, luhnValid } from "@simroot/core";

export interface DemoDevice {
  readonly index: number;
  readonly name: string;
  readonly eid: string;
  readonly iccid: string;
  readonly imsi: string;
  readonly imei: string;
  readonly msisdn: string;
  readonly ip: string;
  readonly labels: { fleet: string; site: string };
  id?: string;
}

export const fleets = {
  meters: { destination: "ingest.meters.example.com", port: 8883 },
  trackers: { destination: "api.tracking.example.com", port: 443 },
  cameras: { destination: "video.example.com", port: 443 },
  gateways: { destination: "10.20.0.10", port: 1883 },
} as const;
export type FleetName = keyof typeof fleets;
export const sites = ["lyon", "porto", "berlin"] as const;

/** The digit that completes `body` into a valid Luhn number (IMEI, ICCID). */
const luhnDigit = (body: string) => String([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].find((digit) => luhnValid(`${body}${digit}`)));

/** 30 digits and the two check digits that make the EID valid (SGP.29: the number mod 97 is 1). */
function eidOf(body30: string): string {
  const check = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, "0")).find((digits) => eidValid(`${body30}${digits}`));
  return `${body30}${check}`;
}

export const imeiFor = (index: number, variant = 0) => {
  const body = `35${String(209900 + variant).padStart(6, "0")}${String(index).padStart(6, "0")}`;
  return body + luhnDigit(body);
};

export function demoFleet(count: number): DemoDevice[] {
  const names = Object.keys(fleets) as FleetName[];
  return Array.from({ length: count }, (_, index) => {
    const fleet = names[index % names.length]!;
    const site = sites[Math.floor(index / names.length) % sites.length]!;
    const serial = String(index).padStart(8, "0");
    const iccidBody = `894450010219${serial.slice(-6)}0`;
    return {
      index,
      name: `${fleet.slice(0, -1)}-${site}-${serial.slice(-4)}`,
      eid: eidOf(`890490320000000000000${serial.padStart(9, "0")}`),
      iccid: iccidBody + luhnDigit(iccidBody),
      imsi: `20801${serial.padStart(10, "0")}`,
      imei: imeiFor(index),
      msisdn: `+3361${serial}`,
      ip: `10.46.${Math.floor(index / 250)}.${(index % 250) + 2}`,
      labels: { fleet, site },
    };
  });
}

export const demoPolicies = [
  ...Object.entries(fleets).map(([fleet, { destination, port }]) => ({
    name: `${fleet} reach their service`,
    selector: { matchLabels: { fleet } },
    destinations: [
      destination.match(/^\d/)
        ? { cidr: `${destination}/32`, ports: [port], protocol: "tcp" }
        : { fqdn: destination, ports: [port], protocol: "tcp" },
    ],
    effect: "allow",
  })),
  {
    name: "Cameras stay on private 5G or Wi-Fi",
    selector: { matchLabels: { fleet: "cameras" } },
    destinations: [{ fqdn: "video.example.com", ports: [443], protocol: "tcp" }],
    conditions: { bearers: ["cellular", "satellite"] },
    effect: "deny",
  },
  {
    name: "Nobody reaches the crypto-mining pool",
    selector: {},
    destinations: [{ fqdn: "*.pool.example.net", protocol: "any" }],
    effect: "deny",
  },
];

/** Where a device that has gone astray tries to connect: the anomalies the console shows. */
export const unfamiliar = ["xmr.pool.example.net", "203.0.113.66", "exfil.example.org"] as const;
