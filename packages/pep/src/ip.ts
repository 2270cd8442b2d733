/** One spelling per address: the control plane's own (core catalogue/ip.ts), so a PEP keys bindings as they are stored. */
export { canonicalIp as normalizeIp } from "@simroot/core/catalogue/ip";
