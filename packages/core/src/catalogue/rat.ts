/**
 * Which bearer a 3GPP radio access type stands for. RatType values per TS 29.571 §5.4.3.2
 * (NR, EUTRA, WLAN, VIRTUAL, NBIOT, WIRELINE*, LTE-M, NR_U, EUTRA_U, TRUSTED_N3GA,
 * TRUSTED_WLAN, UTRA, GERA, NR_LEO/MEO/GEO/OTHER_SAT, NR_REDCAP, WB_E_UTRAN_*, NB_IOT_*, LTE_M_*
 * satellite variants, ...). NON_3GPP_ACCESS is the TS 29.571 AccessType some sources report
 * in its place.
 *
 * Satellite NTN is any RAT with an orbit suffix (_LEO, _MEO, _GEO, _OTHERSAT/_OTHER_SAT);
 * Wi-Fi is WLAN, trusted WLAN, trusted non-3GPP access and non-3GPP access (EAP-AKA' over
 * N3IWF/TNGF). Everything else, and any value we do not recognise, is cellular: private LTE/5G
 * cannot be told from the RAT, the ingestion source's `defaultBearer` says so.
 */
import type { Bearer } from "./catalogue.ts";

const wifiRats = new Set(["WLAN", "TRUSTED_WLAN", "TRUSTED_N3GA", "NON_3GPP_ACCESS"]);
const satelliteSuffix = /_(LEO|MEO|GEO|OTHERSAT|OTHER_SAT)$/;

export function bearerOfRat(rat: string): Bearer {
  const normalized = rat.trim().toUpperCase().replaceAll("-", "_");
  if (satelliteSuffix.test(normalized)) return "satellite";
  if (wifiRats.has(normalized)) return "wifi";
  return "cellular";
}
