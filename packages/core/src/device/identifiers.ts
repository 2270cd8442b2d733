import * as z from "zod";

/** Luhn check (IMEI's 15th digit, most ICCIDs' last digit). */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let index = 0; index < digits.length; index++) {
    let digit = Number(digits[digits.length - 1 - index]);
    if (index % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}

/** `digits` followed by their Luhn check digit. */
export function withLuhnDigit(digits: string): string {
  let check = 0;
  while (!luhnValid(`${digits}${check}`)) check++;
  return `${digits}${check}`;
}

/** EID check digits (GSMA SGP.29): the 32-digit number mod 97 is 1 (ISO 7064 MOD 97-10). */
export function eidValid(eid: string): boolean {
  let remainder = 0;
  for (const digit of eid) remainder = (remainder * 10 + Number(digit)) % 97;
  return remainder === 1;
}

export const eidSchema = z
  .string()
  .regex(/^\d{32}$/, { message: "an EID is 32 decimal digits", abort: true })
  .refine(eidValid, "EID check digits do not match (mod 97 must be 1)")
  .meta({
    description: "eUICC identifier (32 digits, GSMA SGP.29) whose check digits hold: the number mod 97 is 1 (ISO 7064 MOD 97-10)",
    example: "89049032123451234512345678901235",
  });

/**
 * The other spelling of an ICCID: without its Luhn check digit (ITU-T E.118 makes it the last digit), as emnify and
 * 1NCE name a SIM (`iccid`, beside `iccid_with_luhn`), or with it, as the card, an eUICC's EF.ICCID, Twilio and the eIM
 * carry it (review 119: one SIM, two spellings, two devices, and a Data Streamer's SIM deletion that reached neither).
 * A full ICCID (19 or 20 digits) whose check digit holds drops it; a shorter one (18 or 19 digits) whose last digit is
 * no check digit gains one. A 19-digit spelling without its check digit whose last digit happens to check (one in ten)
 * is taken for a full one: its other spelling is not found.
 */
export function iccidOtherSpelling(iccid: string): string | undefined {
  if (!/^\d{18,20}$/.test(iccid)) return undefined;
  if (iccid.length >= 19 && luhnValid(iccid)) return iccid.slice(0, -1);
  return iccid.length <= 19 && !luhnValid(iccid) ? withLuhnDigit(iccid) : undefined;
}

export const iccidSchema = z
  .string()
  .regex(/^89\d{16,18}$/, "an ICCID is 18 to 20 digits starting with 89")
  .meta({ description: "SIM profile identifier (ITU-T E.118)", example: "8944500102198304826" });

export const imsiSchema = z
  .string()
  .regex(/^\d{6,15}$/, "an IMSI is up to 15 digits: MCC, MNC, MSIN")
  .meta({ description: "subscriber identity of a profile (3GPP TS 23.003)", example: "234100000000001" });

export const imeiSchema = z
  .string()
  .regex(/^\d{15}$/, { message: "an IMEI is 15 digits", abort: true })
  .refine(luhnValid, "IMEI check digit does not match (Luhn)")
  .meta({ description: "equipment identity of the modem; its 15th digit is the Luhn check digit", example: "490154203237518" });

export const msisdnSchema = z
  .string()
  .transform((value) => (value.startsWith("+") ? value : `+${value}`))
  .pipe(z.string().regex(/^\+[1-9]\d{6,14}$/, "an MSISDN is an E.164 number"))
  // The document states what is accepted: the leading + may be left out (it is added).
  .meta({
    description: "phone number in E.164 form (the leading + may be left out)",
    example: "+447700900123",
    pattern: "^\\+?[1-9]\\d{6,14}$",
  });

/**
 * An external identifier as it is kept and compared: its domain in lower case (a DNS name, compared without regard to
 * case: RFC 4343), its local part as the operator spelled it.
 */
export const externalIdAlias = (externalId: string): string => {
  const at = externalId.lastIndexOf("@");
  // ASCII letters only, as DNS compares them: a Unicode lower-casing maps other characters too (the Kelvin sign to "k").
  return at < 0 ? externalId : `${externalId.slice(0, at)}@${externalId.slice(at + 1).replace(/[A-Z]/g, (c) => c.toLowerCase())}`;
};

/** A GPSI external identifier (3GPP TS 23.003 §19.7.2, `local@domain`): how a NEF names a UE to an application. */
export const externalIdSchema = z
  .string()
  .max(253)
  .regex(/^[^@\s]+@[^@\s]+$/, "an external identifier is local@domain")
  .transform(externalIdAlias)
  .meta({
    description: "the GPSI external identifier a 3GPP NEF reports the device by (local@domain)",
    example: "meter-4@iot.example.com",
  });

/** Identifier kinds that name exactly one device within a tenant. */
export const identifierKinds = ["eid", "iccid", "imsi", "imei", "msisdn", "externalId", "credential"] as const;
export type IdentifierKind = (typeof identifierKinds)[number];
