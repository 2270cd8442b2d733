import { environmentPorts, type Ports } from "@simroot/core";
import { metricsSink } from "./telemetry.ts";

let built: Ports | undefined;

/**
 * The ports of this Lambda container, built by the entry point from its environment on first
 * use, recording metrics for Powertools to print (lib/telemetry.ts). Only the Lambda `handler`
 * exports call this; the local runtime passes its own ports to each module's `handlerFor`, so
 * nothing runs against ports it did not build.
 */
export const lambdaPorts = (): Ports => (built ??= environmentPorts(metricsSink));
