/**
 * The integrations' settings as the functions read them: what a consumer refuses (a URL its token would travel to in
 * clear, an IoT prefix that would widen its grants) fails that consumer, not the rules every other consumer is reached
 * by (review 161: locally every rule's pattern read the whole settings, and one plain-http URL stopped the local bus).
 */
import { afterEach, describe, expect, it } from "vitest";
import { integrationSettings, integrationTenants, iotPrefix, tokenUrl } from "./config.ts";

const set = (values: Record<string, string>) => Object.assign(process.env, values);
afterEach(() => {
  for (const name of Object.keys(process.env).filter((name) => /^SIMROOT_(SIEM|TAILSCALE|IOT)_/.test(name))) delete process.env[name];
});

describe("integration settings", () => {
  it("take a token's URL over https, or plain http to this machine, and nothing else", () => {
    expect(tokenUrl("SIMROOT_SIEM_URL", "https://siem.example/collect")).toBe("https://siem.example/collect");
    expect(tokenUrl("SIMROOT_SIEM_URL", "http://127.0.0.1:8080/collect")).toBe("http://127.0.0.1:8080/collect");
    expect(tokenUrl("SIMROOT_SIEM_URL", "http://[::1]:8080/")).toBe("http://[::1]:8080/");
    expect(() => tokenUrl("SIMROOT_SIEM_URL", "http://siem.example/collect")).toThrow(/https only/);
    expect(() => tokenUrl("SIMROOT_SIEM_URL", "http://127.0.0.1.example/collect")).toThrow(/https only/);
    expect(() => tokenUrl("SIMROOT_SIEM_URL", "siem.example")).toThrow(/not a URL/);
  });

  it("take an IoT prefix of plain name characters only", () => {
    expect(iotPrefix(undefined)).toBe("simroot-");
    expect(iotPrefix("fleet-")).toBe("fleet-");
    expect(() => iotPrefix("fleet-*")).toThrow(/SIMROOT_IOT_PREFIX/);
  });

  it("name each integration's tenant whatever else a consumer would refuse, and the consumer refuses it", () => {
    set({
      SIMROOT_SIEM_TENANT_ID: "ten_siem",
      SIMROOT_SIEM_URL: "http://siem.example/collect",
      SIMROOT_IOT_TENANT_ID: "ten_iot",
      SIMROOT_IOT_PREFIX: "fleet-*",
    });
    expect(integrationTenants()).toEqual({ iotSync: "ten_iot", postureSync: undefined, siemExport: "ten_siem" });
    expect(() => integrationSettings()).toThrow(/SIMROOT_IOT_PREFIX|SIMROOT_SIEM_URL/);
  });
});
