/** The EventBridge bus simroot publishes its domain events and ingested facts to. */
import type { Resource } from "sst";
import type { Expect } from "./database";

export const bus = new sst.aws.Bus("Events");

/** `SIMROOT_BUS_NAME`, what core's `busName()` reads. */
export const busEnvironment = { SIMROOT_BUS_NAME: bus.name };

/** Fails to typecheck when the committed `sst-env.d.ts` lacks the bus. */
export type BusDeclaredInSstEnv = Expect<Resource["Events"] extends { name: string; arn: string; type: "sst.aws.Bus" } ? true : false>;
