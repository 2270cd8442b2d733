import { recordTimelineEntry, runtimePorts } from "@simroot/core";
import { consumer } from "../lib/consumer.ts";

export const handler = consumer("device-timeline", (envelope) => recordTimelineEntry(runtimePorts(), envelope.detail));
