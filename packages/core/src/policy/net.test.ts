import { describe, expect, it } from "vitest";
import { parseCidr, parseIpInto } from "./net.ts";

const parse = (text: string) => {
  const out = new Uint32Array(4);
  const family = parseIpInto(text, out);
  return { family, words: [...out.slice(0, family === 4 ? 1 : 4)] };
};

describe("parseIpInto", () => {
  it("parses IPv4 and rejects malformed dotted quads", () => {
    expect(parse("10.1.2.3")).toEqual({ family: 4, words: [0x0a010203] });
    expect(parse("255.255.255.255")).toEqual({ family: 4, words: [0xffffffff] });
    for (const bad of ["10.1.2", "10.1.2.3.4", "10.1.2.256", "010.1.2.3", "10..2.3", "10.1.2.3.", "", "a.b.c.d", "1.2.3.4/8"]) {
      expect(parse(bad).family, bad).toBe(0);
    }
  });

  it("parses IPv6 with and without compression", () => {
    expect(parse("2001:db8::1")).toEqual({ family: 6, words: [0x20010db8, 0, 0, 1] });
    expect(parse("::")).toEqual({ family: 6, words: [0, 0, 0, 0] });
    expect(parse("::1")).toEqual({ family: 6, words: [0, 0, 0, 1] });
    expect(parse("fe80::")).toEqual({ family: 6, words: [0xfe800000, 0, 0, 0] });
    expect(parse("1:2:3:4:5:6:7:8")).toEqual({ family: 6, words: [0x10002, 0x30004, 0x50006, 0x70008] });
    expect(parse("1:2:3:4:5:6:7::")).toEqual({ family: 6, words: [0x10002, 0x30004, 0x50006, 0x70000] });
    expect(parse("64:ff9b::192.0.2.1")).toEqual({ family: 6, words: [0x0064ff9b, 0, 0, 0xc0000201] });
    expect(parse("2001:DB8::ABCD")).toEqual({ family: 6, words: [0x20010db8, 0, 0, 0xabcd] });
  });

  it("normalizes IPv4-mapped IPv6 to IPv4", () => {
    expect(parse("::ffff:10.1.2.3")).toEqual({ family: 4, words: [0x0a010203] });
    expect(parse("::ffff:a01:203")).toEqual({ family: 4, words: [0x0a010203] });
  });

  it("rejects malformed IPv6", () => {
    for (const bad of [
      ":::",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7:8::",
      "12345::",
      ":1::",
      "1:",
      "fe80::1%eth0",
      "g::1",
      "::1.2.3",
      "1:2:3:4:5:6:7:1.2.3.4",
    ]) {
      expect(parse(bad).family, bad).toBe(0);
    }
  });
});

describe("parseCidr", () => {
  it("parses IPv4 and IPv6 networks", () => {
    expect(parseCidr("10.0.0.0/8")).toMatchObject({ ok: true, cidr: { family: 4, prefix: 8 } });
    expect(parseCidr("0.0.0.0/0")).toMatchObject({ ok: true, cidr: { family: 4, prefix: 0 } });
    expect(parseCidr("2001:db8::/32")).toMatchObject({ ok: true, cidr: { family: 6, prefix: 32 } });
    expect(parseCidr("::/0")).toMatchObject({ ok: true, cidr: { family: 6, prefix: 0 } });
    expect(parseCidr("2001:db8::1/128")).toMatchObject({ ok: true, cidr: { family: 6, prefix: 128 } });
  });

  it("rejects host bits, missing or oversized prefixes and mapped ranges", () => {
    for (const bad of [
      "10.1.2.3/8",
      "10.0.0.0",
      "10.0.0.0/33",
      "2001:db8::/129",
      "2001:db8::1/64",
      "10.0.0.0/08",
      "10.0.0.0/",
      "::ffff:10.0.0.0/104",
    ]) {
      expect(parseCidr(bad).ok, bad).toBe(false);
    }
  });
});
