/**
 * A state group created on first need whose deny policy could not be attached (AttachPolicy throttled once) was never
 * given its policy (review 133): the bus's retry found the group existing, moved the thing into it, and recorded the
 * delivery, and the suspended device's certificate kept its allow.
 */
import { IoTClient } from "@aws-sdk/client-iot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { syncDeviceToIot } from "@simroot/core";
import { sdkIotControl } from "../../packages/core/src/integration/iot/iot-sdk.ts";
import { startIotLoopback, type IotLoopback } from "../../packages/core/src/integration/iot/iot-loopback.test-support.ts";
import { committedEvents } from "../support/audit-events.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "../support/runtime.ts";

let runtime: TestRuntime;
let iot: IotLoopback;
beforeAll(async () => {
  [runtime, iot] = await Promise.all([startTestRuntime(), startIotLoopback()]);
});
afterAll(async () => {
  await Promise.all([runtime.stop(), iot.close()]);
});

describe("IoT sync after a partial failure setting up a state group", () => {
  it("a suspended device's thing ends in a suspended group that carries the deny-all policy, after a throttled AttachPolicy and the retry", async () => {
    const acme = await tenantClient(runtime);
    const settings = { tenantId: acme.tenant.id, prefix: "simroot-" };
    const client = new IoTClient({
      endpoint: iot.endpoint,
      region: "eu-west-1",
      credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
      maxAttempts: 1,
    });
    let throttleAttach = false;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (throttleAttach && context.commandName === "AttachPolicyCommand") {
          throttleAttach = false;
          throw Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
        }
        return next(args);
      },
      { step: "initialize" },
    );
    const control = sdkIotControl(client);
    const seen = new Set<string>();
    const deliverAll = async () => {
      for (const event of await committedEvents(runtime, acme.tenant.id, seen)) {
        // The bus redelivers a failed event (retry policy): at most three attempts here.
        for (let attempt = 1; ; attempt++) {
          try {
            await syncDeviceToIot(runtime.ports, control, settings, event);
            break;
          } catch (error) {
            if (attempt === 3) throw error;
          }
        }
      }
    };
    const id = (await acme.call("POST", "/v1/devices", { imsi: "208011234567800", labels: { fleet: "meters" } })).json.id as string;
    await deliverAll();
    // The device's certificate carries an allow policy (the fleet's usual IoT setup).
    iot.addCertificate(id, `cert${id.slice(-8).toLowerCase()}`, ["telemetry-allow"]);
    expect((await acme.call("POST", `/v1/devices/${id}/suspend`, { reason: "unpaid" })).status).toBe(200);
    throttleAttach = true;
    await deliverAll();
    expect([...iot.things.get(id)!.groups]).toEqual(["simroot-suspended"]);
    // The group is the one thing that denies the suspended device: without its policy the certificate's allow stands.
    expect([...iot.groups.get("simroot-suspended")!.policies]).toEqual(["simroot-deny-all"]);
  });
});
