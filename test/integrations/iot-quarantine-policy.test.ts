/**
 * The quarantine group's IoT policy, judged as IoT judges policies (an explicit Deny wins over any Allow the device's
 * certificate carries; `NotAction` and `NotResource` match what they do not list; the policy variable is the connected
 * thing's name): a quarantined device may connect and use its own quarantine topics, and nothing else (review 160: the
 * policy denied the MQTT and shadow actions only, so a quarantined device kept whatever else its certificate allowed,
 * Jobs, retained messages, AWS credentials through the credentials provider).
 */
import { describe, expect, it } from "vitest";
import { stateGroups } from "@simroot/core";

interface Statement {
  readonly Effect: "Allow" | "Deny";
  readonly Action?: string | string[];
  readonly NotAction?: string | string[];
  readonly Resource?: string | string[];
  readonly NotResource?: string | string[];
}
const list = (value: string | string[] | undefined) => (value === undefined ? [] : Array.isArray(value) ? value : [value]);
/** IAM's wildcard matching: `*` any run of characters, `?` one. */
const matches = (pattern: string, value: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
  ).test(value);

/** Whether the document explicitly denies `action` on `resource` to the connected thing `thing`. */
function denies(document: string, thing: string, action: string, resource: string): boolean {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the IoT policy variable, literally as the policy document holds it
  const variable = "${iot:Connection.Thing.ThingName}";
  const statements = (JSON.parse(document.replaceAll(variable, thing)) as { Statement: Statement[] }).Statement;
  return statements.some((statement) => {
    if (statement.Effect !== "Deny") return false;
    const actionHit = statement.NotAction
      ? !list(statement.NotAction).some((pattern) => matches(pattern, action))
      : list(statement.Action).some((pattern) => matches(pattern, action));
    const resourceHit = statement.NotResource
      ? !list(statement.NotResource).some((pattern) => matches(pattern, resource))
      : list(statement.Resource).some((pattern) => matches(pattern, resource));
    return actionHit && resourceHit;
  });
}

describe("the quarantine group's IoT policy", () => {
  const { policy } = stateGroups("simroot-").quarantined;
  const thing = "dev_01JQUARANTINED0000000000";
  const arn = (rest: string) => `arn:aws:iot:eu-west-1:111122223333:${rest}`;

  it("leaves a quarantined device its connection and its own quarantine topics", () => {
    expect(denies(policy!.document, thing, "iot:Connect", arn(`client/${thing}`))).toBe(false);
    expect(denies(policy!.document, thing, "iot:Publish", arn(`topic/quarantine/${thing}/status`))).toBe(false);
    expect(denies(policy!.document, thing, "iot:Receive", arn(`topic/quarantine/${thing}/cmd`))).toBe(false);
    expect(denies(policy!.document, thing, "iot:Subscribe", arn(`topicfilter/quarantine/${thing}/cmd`))).toBe(false);
  });

  it.each([
    ["its usual topics", "iot:Publish", "topic/devices/dev_01JQUARANTINED0000000000/up"],
    ["another device's quarantine topics", "iot:Subscribe", "topicfilter/quarantine/dev_other/cmd"],
    ["its shadow", "iot:GetThingShadow", "thing/dev_01JQUARANTINED0000000000"],
    ["its Jobs over HTTPS", "iot:GetPendingJobExecutions", "thing/dev_01JQUARANTINED0000000000"],
    ["a job's next execution", "iot:StartNextPendingJobExecution", "thing/dev_01JQUARANTINED0000000000"],
    ["retained messages", "iot:GetRetainedMessage", "topic/fleet/config"],
    ["AWS credentials through the credentials provider", "iot:AssumeRoleWithCertificate", "rolealias/fleet-uploads"],
  ])("denies %s", (_, action, resource) => {
    expect(denies(policy!.document, thing, action, arn(resource))).toBe(true);
  });
});
