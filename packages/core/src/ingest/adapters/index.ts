import type { Adapter, IngestFormat } from "../adapter.ts";
import { camaraAdapter } from "./camara.ts";
import { datastreamerAdapter } from "./datastreamer.ts";
import { eimAdapter } from "./eim.ts";
import { nefAdapter } from "./nef.ts";
import { simrootAdapter } from "./simroot.ts";
import { supersimAdapter } from "./supersim.ts";

/** Every ingestion format and the adapter that speaks it. */
export const adapters: Readonly<Record<IngestFormat, Adapter>> = {
  simroot: simrootAdapter,
  camara: camaraAdapter,
  nef: nefAdapter,
  datastreamer: datastreamerAdapter,
  supersim: supersimAdapter,
  eim: eimAdapter,
};
