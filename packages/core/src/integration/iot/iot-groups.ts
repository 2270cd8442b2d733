/**
 * simroot's device states as AWS IoT thing groups, with the policies that make each state
 * bite on the MQTT side. IoT policies add up, but an explicit Deny wins over any Allow the
 * device's certificate carries: the quarantine group denies everything except connecting and the device's
 * own quarantine topics, the suspended and revoked groups deny everything.
 */
import type { DeviceState } from "../../device/device.ts";
import type { IotGroupSpec } from "./iot-port.ts";

const quarantineDocument = JSON.stringify({
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Deny",
      Action: ["iot:Publish", "iot:Receive", "iot:RetainPublish"],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: an IoT policy variable, substituted by AWS IoT per connection
      NotResource: ["arn:aws:iot:*:*:topic/quarantine/${iot:Connection.Thing.ThingName}/*"],
    },
    {
      Effect: "Deny",
      Action: "iot:Subscribe",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: an IoT policy variable, substituted by AWS IoT per connection
      NotResource: ["arn:aws:iot:*:*:topicfilter/quarantine/${iot:Connection.Thing.ThingName}/*"],
    },
    { Effect: "Deny", Action: ["iot:UpdateThingShadow", "iot:DeleteThingShadow", "iot:GetThingShadow"], Resource: "*" },
    // Every other action, whatever the certificate allows (review 160: Jobs over HTTPS, retained messages, AWS credentials
    // through the credentials provider were left to it).
    { Effect: "Deny", NotAction: ["iot:Connect", "iot:Publish", "iot:Receive", "iot:RetainPublish", "iot:Subscribe"], Resource: "*" },
  ],
});

const denyAllDocument = JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Deny", Action: "iot:*", Resource: "*" }] });

/** The thing group of each state, and the policy attached to it. */
export function stateGroups(prefix: string): Record<DeviceState, IotGroupSpec> {
  return {
    active: { name: `${prefix}active` },
    suspended: { name: `${prefix}suspended`, policy: { name: `${prefix}deny-all`, document: denyAllDocument } },
    // `-v2`: the policy is created when missing, never changed, so a deployment holding the first document (which let the
    // certificate's other actions through) is given this one under a new name, attached beside the first (deny-only) at
    // the next quarantine.
    quarantined: { name: `${prefix}quarantined`, policy: { name: `${prefix}quarantine-v2`, document: quarantineDocument } },
    revoked: { name: `${prefix}revoked`, policy: { name: `${prefix}deny-all`, document: denyAllDocument } },
  };
}

export const thingTypeName = (prefix: string) => `${prefix}sim`;
