/**
 * Examples come from the AWS EventBridge user guide ("Amazon EventBridge event patterns",
 * "Matching null values and empty strings", "Arrays in Amazon EventBridge event patterns",
 * "Content filtering in Amazon EventBridge event patterns" and its "Comparison operators" table).
 * A few edge cases the guide leaves implicit are pinned to the aws/event-ruler README (the engine
 * EventBridge runs) or to LocalStack's event-pattern fixtures recorded against real AWS; those say so.
 */
import { describe, it, expect } from "vitest";
import type { EventPattern } from "../platform/rules.ts";
import { matchesPattern, validatePattern } from "./pattern.ts";

/** Every pattern used for matching must also be accepted by the validator. */
function matches(pattern: EventPattern, event: unknown): boolean {
  validatePattern(pattern);
  return matchesPattern(pattern, event);
}

/** "Amazon EventBridge event patterns": the EC2 instance state-change sample event. */
const ec2StateChange = {
  version: "0",
  id: "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
  "detail-type": "EC2 Instance State-change Notification",
  source: "aws.ec2",
  account: "111122223333",
  time: "2017-12-22T18:43:48Z",
  region: "us-west-1",
  resources: ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
  detail: { "instance-id": "i-1234567890abcdef0", state: "terminated" },
};

const withDetail = (detail: object) => ({ ...ec2StateChange, detail });

// Amazon EventBridge event patterns (introduction, "Create event patterns", "Match Values")
describe("event patterns", () => {
  const terminated = {
    source: ["aws.ec2"],
    "detail-type": ["EC2 Instance State-change Notification"],
    detail: { state: ["terminated"] },
  };

  it("matches the EC2 instance-termination pattern against the sample event", () => {
    expect(matches(terminated, ec2StateChange)).toBe(true);
  });

  it("requires every pattern field to match (AND)", () => {
    expect(matches(terminated, withDetail({ "instance-id": "i-1234567890abcdef0", state: "running" }))).toBe(false);
    expect(matches(terminated, { ...ec2StateChange, source: "aws.autoscaling" })).toBe(false);
  });

  it("requires the fields to exist with the same nesting", () => {
    expect(matches(terminated, { ...ec2StateChange, detail: undefined })).toBe(false);
    expect(matches(terminated, { ...ec2StateChange, detail: "terminated" })).toBe(false);
    expect(matches({ state: ["terminated"] }, ec2StateChange)).toBe(false);
  });

  it("matches if any value of the leaf array matches (OR)", () => {
    const ec2OrFargate = { source: ["aws.ec2", "aws.fargate"] };
    expect(matches(ec2OrFargate, ec2StateChange)).toBe(true);
    expect(matches(ec2OrFargate, { ...ec2StateChange, source: "aws.fargate" })).toBe(true);
    expect(matches(ec2OrFargate, { ...ec2StateChange, source: "aws.lambda" })).toBe(false);
  });

  it("compares strings character by character, without case folding", () => {
    expect(matches({ detail: { state: ["Terminated"] } }, ec2StateChange)).toBe(false);
    expect(matches({ detail: { state: ["terminated "] } }, ec2StateChange)).toBe(false);
  });

  // "Example events and event patterns" > "Value matching" (Amazon Macie alert)
  it("matches numbers in nested objects", () => {
    const macieAlert = {
      source: "aws.macie",
      "detail-type": "Macie Alert",
      detail: { "risk-score": 80, trigger: { "alert-type": "basic", risk: 8 } },
    };
    const pattern = {
      source: ["aws.macie"],
      "detail-type": ["Macie Alert"],
      detail: { "risk-score": [80], trigger: { risk: [8] } },
    };
    expect(matches(pattern, macieAlert)).toBe(true);
    expect(matches(pattern, { ...macieAlert, detail: { ...macieAlert.detail, "risk-score": 79 } })).toBe(false);
  });

  it("does not match across JSON types", () => {
    expect(matches({ detail: { count: [5] } }, { detail: { count: "5" } })).toBe(false);
    expect(matches({ detail: { count: ["5"] } }, { detail: { count: 5 } })).toBe(false);
    expect(matches({ detail: { flag: [true] } }, { detail: { flag: "true" } })).toBe(false);
    expect(matches({ detail: { flag: [true] } }, { detail: { flag: true } })).toBe(true);
  });

  it("ignores properties inherited from Object.prototype", () => {
    expect(matches({ detail: { constructor: [{ exists: false }] } }, ec2StateChange)).toBe(true);
    expect(matches({ detail: { toString: [{ exists: true }] } }, ec2StateChange)).toBe(false);
  });
});

// Matching null values and empty strings in Amazon EventBridge event patterns
describe("null values and empty strings", () => {
  const launchSuccessful = {
    version: "0",
    id: "3e3c153a-8339-4e30-8c35-687ebef853fe",
    "detail-type": "EC2 Instance Launch Successful",
    source: "aws.autoscaling",
    account: "123456789012",
    time: "2015-11-11T21:31:47Z",
    region: "us-east-1",
    resources: [],
    detail: { eventVersion: "", responseElements: null },
  };

  it("matches an empty string with an empty-string value", () => {
    expect(matches({ detail: { eventVersion: [""] } }, launchSuccessful)).toBe(true);
    expect(matches({ detail: { eventVersion: [""] } }, { detail: { eventVersion: "1.0" } })).toBe(false);
  });

  it("matches null with a null value", () => {
    const pattern = {
      source: ["aws.autoscaling"],
      "detail-type": ["EC2 Instance Launch Successful"],
      detail: { responseElements: [null] },
    };
    expect(matches(pattern, launchSuccessful)).toBe(true);
    expect(matches(pattern, { ...launchSuccessful, detail: { responseElements: {} } })).toBe(false);
  });

  it("does not treat null and empty strings as interchangeable", () => {
    expect(matches({ detail: { responseElements: [""] } }, launchSuccessful)).toBe(false);
    expect(matches({ detail: { eventVersion: [null] } }, launchSuccessful)).toBe(false);
  });

  it("does not match null against a missing field or an empty array", () => {
    expect(matches({ detail: { missing: [null] } }, launchSuccessful)).toBe(false);
    // LocalStack fixture arrays_empty_null_NEG (recorded against AWS)
    expect(matches({ resources: [null] }, launchSuccessful)).toBe(false);
  });
});

// Arrays in Amazon EventBridge event patterns
describe("arrays", () => {
  const pattern = {
    resources: [
      "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
      "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f",
      "arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f",
    ],
  };

  it("matches when the pattern array and the event array intersect", () => {
    const event = {
      resources: [
        "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b-bbf0-401d-b893-d5978ed4a025:autoScalingGroupName/ASGTerminate",
        "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
      ],
    };
    expect(matches(pattern, event)).toBe(true);
  });

  it("does not match when the arrays do not intersect", () => {
    expect(matches(pattern, { resources: ["arn:aws:ec2:us-east-1:999999999999:instance/i-b188560f"] })).toBe(false);
    expect(matches(pattern, { resources: [] })).toBe(false);
  });

  it("applies operators to each element of an event array", () => {
    const ec2Resources = { resources: [{ prefix: "arn:aws:ec2:" }] };
    expect(matches(ec2Resources, ec2StateChange)).toBe(true);
    expect(matches(ec2Resources, { resources: ["arn:aws:s3:::bucket"] })).toBe(false);
  });

  // aws/event-ruler README, "JSON Array Matching": fields must come from the same array element
  it("matches a nested pattern against one element of an array of objects", () => {
    const employees = {
      employees: [
        { firstName: "John", lastName: "Doe" },
        { firstName: "Anna", lastName: "Smith" },
        { firstName: "Peter", lastName: "Jones" },
      ],
    };
    expect(matches({ employees: { firstName: ["Anna"] } }, employees)).toBe(true);
    expect(matches({ employees: { firstName: ["Anna"], lastName: ["Smith"] } }, employees)).toBe(true);
    expect(matches({ employees: { firstName: ["Anna"], lastName: ["Jones"] } }, employees)).toBe(false);
  });
});

// Content filtering > Prefix matching; Prefix matching while ignoring case
describe("prefix", () => {
  it("matches strings that start with the prefix", () => {
    const pattern = { time: [{ prefix: "2017-10-02" }] };
    expect(matches(pattern, { time: "2017-10-02T18:43:48Z" })).toBe(true);
    expect(matches(pattern, { time: "2017-10-03T18:43:48Z" })).toBe(false);
    expect(matches(pattern, ec2StateChange)).toBe(false);
  });

  it("only matches string values", () => {
    expect(matches({ detail: { code: [{ prefix: "12" }] } }, { detail: { code: 123 } })).toBe(false);
  });

  it("ignores case with equals-ignore-case", () => {
    const pattern = { detail: { service: [{ prefix: { "equals-ignore-case": "EventB" } }] } };
    expect(matches(pattern, { detail: { service: "EventBridge" } })).toBe(true);
    expect(matches(pattern, { detail: { service: "EVENTBRIDGE" } })).toBe(true);
    expect(matches(pattern, { detail: { service: "eventbus" } })).toBe(true);
    expect(matches(pattern, { detail: { service: "Event" } })).toBe(false);
    expect(matches(pattern, { detail: { service: "Lambda" } })).toBe(false);
  });
});

// Content filtering > Suffix matching; Suffix matching while ignoring case
describe("suffix", () => {
  it("matches strings that end with the suffix", () => {
    const pattern = { FileName: [{ suffix: ".png" }] };
    expect(matches(pattern, { FileName: "image.png" })).toBe(true);
    expect(matches(pattern, { FileName: "image.jpg" })).toBe(false);
    expect(matches(pattern, { FileName: "image.PNG" })).toBe(false);
  });

  it("ignores case with equals-ignore-case", () => {
    const pattern = { detail: { FileName: [{ suffix: { "equals-ignore-case": ".png" } }] } };
    expect(matches(pattern, { detail: { FileName: "IMAGE.PNG" } })).toBe(true);
    expect(matches(pattern, { detail: { FileName: "image.png" } })).toBe(true);
    expect(matches(pattern, { detail: { FileName: "image.jpg" } })).toBe(false);
  });
});

// Content filtering > Equals-ignore-case matching; Comparison operators table "Equals (ignore case)"
describe("equals-ignore-case", () => {
  it("matches strings regardless of case", () => {
    const pattern = { Name: [{ "equals-ignore-case": "alice" }] };
    expect(matches(pattern, { Name: "Alice" })).toBe(true);
    expect(matches(pattern, { Name: "ALICE" })).toBe(true);
    expect(matches(pattern, { Name: "Alicia" })).toBe(false);
    expect(matches(pattern, { Name: ["Bob", "alice"] })).toBe(true);
  });
});

// Content filtering > Anything-but matching
describe("anything-but", () => {
  it("excludes a single string", () => {
    const pattern = { detail: { state: [{ "anything-but": "initializing" }] } };
    expect(matches(pattern, withDetail({ state: "running" }))).toBe(true);
    expect(matches(pattern, withDetail({ state: "initializing" }))).toBe(false);
  });

  it("excludes a single number", () => {
    const pattern = { detail: { "x-limit": [{ "anything-but": 123 }] } };
    expect(matches(pattern, withDetail({ "x-limit": 124 }))).toBe(true);
    expect(matches(pattern, withDetail({ "x-limit": 123 }))).toBe(false);
  });

  it("excludes a list of strings", () => {
    const pattern = { detail: { state: [{ "anything-but": ["stopped", "overloaded"] }] } };
    expect(matches(pattern, withDetail({ state: "running" }))).toBe(true);
    expect(matches(pattern, withDetail({ state: "stopped" }))).toBe(false);
    expect(matches(pattern, withDetail({ state: "overloaded" }))).toBe(false);
  });

  it("excludes a list of numbers, compared numerically", () => {
    const pattern = { detail: { "x-limit": [{ "anything-but": [100, 200, 300] }] } };
    expect(matches(pattern, withDetail({ "x-limit": 301.8 }))).toBe(true);
    expect(matches(pattern, withDetail({ "x-limit": 200 }))).toBe(false);
    expect(matches(pattern, withDetail({ "x-limit": 3.0e2 }))).toBe(false);
  });

  it("excludes a prefix", () => {
    const pattern = { detail: { state: [{ "anything-but": { prefix: "init" } }] } };
    expect(matches(pattern, withDetail({ state: "running" }))).toBe(true);
    expect(matches(pattern, withDetail({ state: "initializing" }))).toBe(false);
    // LocalStack fixture content_anything_prefix_int_value (recorded against AWS): numbers have no prefix
    expect(matches(pattern, withDetail({ state: 12 }))).toBe(true);
  });

  it("excludes a suffix", () => {
    const pattern = { FileName: [{ "anything-but": { suffix: ".png" } }] };
    expect(matches(pattern, { FileName: "image.jpg" })).toBe(true);
    expect(matches(pattern, { FileName: "image.png" })).toBe(false);
  });

  it("excludes values regardless of case", () => {
    const pattern = { state: [{ "anything-but": { "equals-ignore-case": "initializing" } }] };
    expect(matches(pattern, { state: "running" })).toBe(true);
    expect(matches(pattern, { state: "INITIALIZING" })).toBe(false);
    const list = { state: [{ "anything-but": { "equals-ignore-case": ["Stopped", "Overloaded"] } }] };
    expect(matches(list, { state: "running" })).toBe(true);
    expect(matches(list, { state: "OVERLOADED" })).toBe(false);
  });

  it("excludes a wildcard", () => {
    const pattern = { FilePath: [{ "anything-but": { wildcard: "*/lib/*" } }] };
    expect(matches(pattern, { FilePath: "/usr/bin/tool" })).toBe(true);
    expect(matches(pattern, { FilePath: "/usr/lib/tool" })).toBe(false);
  });

  // LocalStack fixtures content_anything_but_string_null / _missing_NEG (recorded against AWS)
  it("matches a null value but not a missing field", () => {
    const pattern = { detail: { state: [{ "anything-but": "initializing" }] } };
    expect(matches(pattern, withDetail({ state: null }))).toBe(true);
    expect(matches(pattern, withDetail({}))).toBe(false);
  });

  // Amazon SNS "Numeric value matching" > Anything-but documents the shared engine's array behaviour
  it("matches an event array when any element is not excluded", () => {
    const pattern = { price: [{ "anything-but": [100, 500] }] };
    expect(matches(pattern, { price: [100, 50] })).toBe(true);
    expect(matches(pattern, { price: [100, 500] })).toBe(false);
  });
});

// Content filtering > Numeric matching; Comparison operators table "Numeric (equals)", "Numeric (range)"
describe("numeric", () => {
  const pattern = {
    detail: {
      "c-count": [{ numeric: [">", 0, "<=", 5] }],
      "d-count": [{ numeric: ["<", 10] }],
      "x-limit": [{ numeric: ["=", 3.018e2] }],
    },
  };
  const counts = { "c-count": 5, "d-count": 3, "x-limit": 301.8 };

  it("matches when every numeric field satisfies its comparisons", () => {
    expect(matches(pattern, withDetail(counts))).toBe(true);
  });

  it("does not match when any comparison fails", () => {
    expect(matches(pattern, withDetail({ ...counts, "c-count": 0 }))).toBe(false);
    expect(matches(pattern, withDetail({ ...counts, "c-count": 5.5 }))).toBe(false);
    expect(matches(pattern, withDetail({ ...counts, "d-count": 10 }))).toBe(false);
    expect(matches(pattern, withDetail({ ...counts, "x-limit": 301.9 }))).toBe(false);
  });

  it("only matches JSON numbers", () => {
    expect(matches(pattern, withDetail({ ...counts, "c-count": "5" }))).toBe(false);
    expect(matches({ Price: [{ numeric: ["=", 100] }] }, { Price: null })).toBe(false);
  });

  it("compares numerically, so 100 equals 1.0e2 and 100.0", () => {
    const price = { Price: [{ numeric: ["=", 100] }] };
    expect(matches(price, JSON.parse('{"Price": 1.0e2}'))).toBe(true);
    expect(matches(price, JSON.parse('{"Price": 100.0}'))).toBe(true);
    expect(matches(price, { Price: 101 })).toBe(false);
  });

  it("supports each single comparison operator", () => {
    const check = (operator: string, bound: number, value: number) =>
      matches({ Price: [{ numeric: [operator, bound] }] }, { Price: value });
    expect([check(">", 10, 11), check(">", 10, 10)]).toEqual([true, false]);
    expect([check(">=", 10, 10), check(">=", 10, 9)]).toEqual([true, false]);
    expect([check("<", 10, 9), check("<", 10, 10)]).toEqual([true, false]);
    expect([check("<=", 10, 10), check("<=", 10, 11)]).toEqual([true, false]);
  });

  it("matches a range given by a lower and an upper bound", () => {
    const range = { Price: [{ numeric: [">", 10, "<=", 20] }] };
    expect(matches(range, { Price: 20 })).toBe(true);
    expect(matches(range, { Price: 10.5 })).toBe(true);
    expect(matches(range, { Price: 10 })).toBe(false);
    expect(matches(range, { Price: 20.5 })).toBe(false);
  });
});

// Content filtering > IP address matching
describe("cidr", () => {
  const pattern = { detail: { sourceIPAddress: [{ cidr: "10.0.0.0/24" }] } };

  it("matches IPv4 addresses inside the block", () => {
    expect(matches(pattern, withDetail({ sourceIPAddress: "10.0.0.0" }))).toBe(true);
    expect(matches(pattern, withDetail({ sourceIPAddress: "10.0.0.255" }))).toBe(true);
  });

  it("does not match addresses outside the block, non-addresses or non-strings", () => {
    expect(matches(pattern, withDetail({ sourceIPAddress: "10.0.1.1" }))).toBe(false);
    expect(matches(pattern, withDetail({ sourceIPAddress: "not-an-ip" }))).toBe(false);
    // LocalStack fixture content_ip_address_bad_type_NEG (recorded against AWS)
    expect(matches(pattern, withDetail({ sourceIPAddress: 123 }))).toBe(false);
  });

  it("matches IPv6 addresses", () => {
    const ipv6 = { detail: { sourceIPAddress: [{ cidr: "2001:db8:1234:1a00::/64" }] } };
    expect(matches(ipv6, withDetail({ sourceIPAddress: "2001:0db8:1234:1a00:0000:0000:0000:0000" }))).toBe(true);
    expect(matches(ipv6, withDetail({ sourceIPAddress: "2001:db8:1234:1a00::ffff" }))).toBe(true);
    expect(matches(ipv6, withDetail({ sourceIPAddress: "2001:db8:1234:1a01::1" }))).toBe(false);
    expect(matches(ipv6, withDetail({ sourceIPAddress: "10.0.0.1" }))).toBe(false);
  });
});

// Content filtering > Exists matching
describe("exists", () => {
  const ec2Pending = {
    version: "0",
    id: "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "EC2 Instance State-change Notification",
    source: "aws.ec2",
    account: "123456789012",
    time: "2015-11-11T21:29:54Z",
    region: "us-east-1",
    resources: ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
    detail: { "instance-id": "i-abcd1111", state: "pending" },
  };
  const withoutState = {
    "detail-type": ["EC2 Instance State-change Notification"],
    resources: ["arn:aws:ec2:us-east-1:123456789012:instance/i-02ebd4584a2ebd341"],
    detail: { "c-count": { c1: 100 } },
  };

  it("exists: true matches an event that has the field", () => {
    expect(matches({ detail: { state: [{ exists: true }] } }, ec2Pending)).toBe(true);
  });

  it("exists: true does not match an event without the field", () => {
    expect(matches({ detail: { state: [{ exists: true }] } }, withoutState)).toBe(false);
  });

  it("exists: false matches a missing field and a non-leaf field, but not a leaf", () => {
    const noCCount = { detail: { "c-count": [{ exists: false }] } };
    expect(matches(noCCount, ec2Pending)).toBe(true);
    expect(matches(noCCount, withoutState)).toBe(true);
    expect(matches(noCCount, withDetail({ "c-count": 5 }))).toBe(false);
  });

  // LocalStack fixtures exists_list_empty_NEG and content_exists_false (recorded against AWS)
  it("treats an empty array as absent and looks through missing parents", () => {
    expect(matches({ resources: [{ exists: true }] }, { resources: [] })).toBe(false);
    expect(matches({ resources: [{ exists: false }] }, { resources: [] })).toBe(true);
    expect(matches({ detail: { level1: { level2: [{ exists: false }] } } }, withDetail({}))).toBe(true);
  });
});

// Content filtering > Wildcard matching; Comparison operators table "Wildcard"
describe("wildcard", () => {
  it("matches the event-bus ARN example", () => {
    const pattern = { EventBusArn: [{ wildcard: "arn:aws:events:us-east-1:*:event-bus/*" }] };
    expect(matches(pattern, { EventBusArn: "arn:aws:events:us-east-1:123456789012:event-bus/myEventBus" })).toBe(true);
    expect(matches(pattern, { EventBusArn: "arn:aws:events:us-west-2:123456789012:event-bus/myEventBus" })).toBe(false);
  });

  it("matches any file with a .png extension in the folder dir", () => {
    const pattern = { FileName: [{ wildcard: "dir/*.png" }] };
    expect(matches(pattern, { FileName: "dir/image.png" })).toBe(true);
    expect(matches(pattern, { FileName: "dir/.png" })).toBe(true);
    expect(matches(pattern, { FileName: "other/image.png" })).toBe(false);
    expect(matches(pattern, { FileName: "dir/image.png.bak" })).toBe(false);
  });

  // LocalStack fixtures content_wildcard_nonrepeating / content_wildcard_repeating_NEG (recorded against AWS)
  it("lets * span path separators but still anchors the rest", () => {
    const doc = { FileName: [{ wildcard: "/Users/*/doc.txt" }] };
    expect(matches(doc, { FileName: "/Users/ls_user/dir/dir/dir/dir/dir/doc.txt" })).toBe(true);
    const deep = { FileName: [{ wildcard: "/Users/*/dir/dir/dir/dir/dir/doc.txt" }] };
    expect(matches(deep, { FileName: "/Users/ls_user/dir/dir/dir/dir/otherdir/doc.txt" })).toBe(false);
  });

  it("answers at once for a pattern of many stars against a long value that almost matches (no backtracking: review 55)", () => {
    // As a regular expression, ^.*a.*a…b$ backtracks exponentially: 6 stars against 64 characters took 6 s, these minutes.
    const pattern = { name: [{ wildcard: `${"*a".repeat(20)}*b` }] };
    expect(matches(pattern, { name: "a".repeat(400) })).toBe(false);
    expect(matches(pattern, { name: `${"a".repeat(400)}b` })).toBe(true);
    expect(matches({ name: [{ wildcard: "*a*b*c" }] }, { name: "xaybzc" })).toBe(true);
    expect(matches({ name: [{ wildcard: "*a*b*c" }] }, { name: "xaybzcd" })).toBe(false);
    expect(matches({ name: [{ wildcard: "a*" }] }, { name: "a" })).toBe(true);
    expect(matches({ name: [{ wildcard: "*" }] }, { name: "" })).toBe(true);
    expect(matches({ name: [{ wildcard: "a\\*b*" }] }, { name: "a*bxyz" })).toBe(true);
  }, 2_000);

  it("treats \\* as a literal star and \\\\ as a literal backslash", () => {
    const star = { FileName: [{ wildcard: "report\\*.txt" }] };
    expect(matches(star, { FileName: "report*.txt" })).toBe(true);
    expect(matches(star, { FileName: "report-2024.txt" })).toBe(false);
    const backslash = { Path: [{ wildcard: "C:\\\\*" }] };
    expect(matches(backslash, { Path: "C:\\temp" })).toBe(true);
    expect(matches(backslash, { Path: "C:/temp" })).toBe(false);
  });

  it("treats regular-expression characters literally and only matches strings", () => {
    const pattern = { Name: [{ wildcard: "a.b(*)" }] };
    expect(matches(pattern, { Name: "a.b(c)" })).toBe(true);
    expect(matches(pattern, { Name: "axb(c)" })).toBe(false);
    expect(matches({ Count: [{ wildcard: "1*" }] }, { Count: 12 })).toBe(false);
  });
});

// Content filtering > "$or" matching; Comparison operators table "Or (multiple fields)"
describe("$or", () => {
  const pattern = {
    detail: {
      $or: [
        { "c-count": [{ numeric: [">", 0, "<=", 5] }] },
        { "d-count": [{ numeric: ["<", 10] }] },
        { "x-limit": [{ numeric: ["=", 3.018e2] }] },
      ],
    },
  };

  it("matches when any branch matches", () => {
    expect(matches(pattern, withDetail({ "c-count": 0, "d-count": 0, "x-limit": 9.018e2 }))).toBe(true);
    expect(matches(pattern, withDetail({ "x-limit": 301.8 }))).toBe(true);
  });

  it("does not match when no branch matches", () => {
    expect(matches(pattern, withDetail({ "c-count": 0, "d-count": 10, "x-limit": 9.018e2 }))).toBe(false);
  });

  it("combines with sibling fields using AND at the top level", () => {
    const newYorkOrMonday = { source: ["aws.ec2"], $or: [{ Location: ["New York"] }, { Day: ["Monday"] }] };
    expect(matches(newYorkOrMonday, { source: "aws.ec2", Location: "New York", Day: "Tuesday" })).toBe(true);
    expect(matches(newYorkOrMonday, { source: "aws.ec2", Location: "Boston", Day: "Monday" })).toBe(true);
    expect(matches(newYorkOrMonday, { source: "aws.ec2", Location: "Boston", Day: "Tuesday" })).toBe(false);
    expect(matches(newYorkOrMonday, { source: "aws.s3", Location: "New York" })).toBe(false);
  });

  // aws/event-ruler README, "Nested 'Or' and 'And'"
  it("nests inside branches", () => {
    const nested = {
      source: ["aws.cloudwatch"],
      $or: [
        { metricName: ["CPUUtilization", "ReadLatency"] },
        { metricType: ["MetricType"], namespace: ["AWS/EC2", "AWS/ES"], $or: [{ metricId: [1234] }, { spaceId: [1000] }] },
        { scope: ["Service"] },
      ],
    };
    const event = { source: "aws.cloudwatch", metricType: "MetricType", namespace: "AWS/EC2" };
    expect(matches(nested, { ...event, spaceId: 1000 })).toBe(true);
    expect(matches(nested, { ...event, spaceId: 1001 })).toBe(false);
    expect(matches(nested, { source: "aws.cloudwatch", scope: "Service" })).toBe(true);
  });
});

// Content filtering > Complex example with multiple matching (event from the aws/event-ruler README)
describe("complex example", () => {
  const pattern = {
    time: [{ prefix: "2017-10-02" }],
    detail: {
      state: [{ "anything-but": "initializing" }],
      "c-count": [{ numeric: [">", 0, "<=", 5] }],
      "d-count": [{ numeric: ["<", 10] }],
      "x-limit": [{ "anything-but": [100, 200, 300] }],
    },
  };
  const event = {
    ...ec2StateChange,
    time: "2017-10-02T16:24:49Z",
    detail: { "c-count": 5, "d-count": 3, "x-limit": 301.8, "source-ip": "10.0.0.33", state: "running" },
  };

  it("matches when every filter holds", () => {
    expect(matches(pattern, event)).toBe(true);
  });

  it("does not match when one filter fails", () => {
    expect(matches(pattern, { ...event, time: "2017-10-03T16:24:49Z" })).toBe(false);
    expect(matches(pattern, { ...event, detail: { ...event.detail, "x-limit": 200 } })).toBe(false);
    expect(matches(pattern, { ...event, detail: { ...event.detail, state: "initializing" } })).toBe(false);
  });
});

describe("validatePattern", () => {
  it("accepts every documented operator", () => {
    const documented = [
      { time: [{ prefix: "2017-10-02" }], FileName: [{ suffix: ".png" }], Name: [{ "equals-ignore-case": "alice" }] },
      { service: [{ prefix: { "equals-ignore-case": "eventb" } }, { suffix: { "equals-ignore-case": "tbridge" } }] },
      { state: [{ "anything-but": { prefix: "init" } }, { "anything-but": { suffix: ".png" } }] },
      { FilePath: [{ "anything-but": { wildcard: "*/lib/*" } }, { "anything-but": [100, 200] }] },
      { Price: [{ numeric: ["=", 100] }, { numeric: [">=", 10, "<", 20] }], UserID: [null], LastName: [""] },
      { ProductName: [{ exists: true }], Other: [{ exists: false }], ip: [{ cidr: "10.0.0.0/24" }] },
      { $or: [{ Location: ["New York"] }, { Day: ["Monday"] }] },
    ];
    for (const pattern of documented) expect(() => validatePattern(pattern)).not.toThrow();
  });

  it.each([
    ["a non-object pattern", ["aws.ec2"], /\(root\).*must be a JSON object/],
    ["an empty pattern", {}, /\(root\).*empty objects/],
    ["a leaf that is not an array", { source: "aws.ec2" }, /"source".*must be an array/],
    ["an empty leaf array", { detail: { state: [] } }, /"detail\.state".*empty arrays/],
    ["a nested array value", { detail: { state: [["running"]] } }, /"detail\.state\[0\]"/],
    ["an unknown operator", { detail: { state: [{ prefx: "init" }] } }, /"detail\.state\[0\]".*unknown operator "prefx"/],
    ["an operator object with two keys", { state: [{ prefix: "a", suffix: "b" }] }, /"state\[0\]".*exactly one key/],
    ["a non-string prefix", { time: [{ prefix: 2017 }] }, /"time\[0\]\.prefix"/],
    ["a prefix with an unknown option", { time: [{ prefix: { "ignore-case": "x" } }] }, /"time\[0\]\.prefix"/],
    ["equals-ignore-case with a prefix", { t: [{ "equals-ignore-case": { prefix: "ec2" } }] }, /"t\[0\]\.equals-ignore-case"/],
    ["a non-boolean exists", { state: [{ exists: "yes" }] }, /"state\[0\]\.exists".*true or false/],
    ["the != numeric operator", { Price: [{ numeric: ["!=", 5] }] }, /"Price\[0\]\.numeric".*"!="/],
    [
      "two lower bounds",
      { Price: [{ numeric: [">", 0, ">", 0] }] },
      /"Price\[0\]\.numeric".*unsupported numeric operator ">" \(expected < or <=\)/,
    ],
    ["a range starting with <", { Price: [{ numeric: ["<", 10, "<=", 20] }] }, /unsupported numeric operator "<"/],
    ["a non-numeric bound", { Price: [{ numeric: [">", "5"] }] }, /must be a number/],
    ["an inverted range", { Price: [{ numeric: [">", 20, "<", 10] }] }, /lower bound must be less/],
    ["a numeric operand of odd length", { Price: [{ numeric: [">", 0, "<"] }] }, /"Price\[0\]\.numeric"/],
    ["a malformed CIDR", { ip: [{ cidr: "bad-/64filter" }] }, /"ip\[0\]\.cidr"/],
    ["a CIDR prefix length too long", { ip: [{ cidr: "10.0.0.0/33" }] }, /"ip\[0\]\.cidr"/],
    ["consecutive wildcards", { arn: [{ wildcard: "arn:aws:events:us-east-1:**:event-bus/*" }] }, /consecutive/],
    // DynamoDB stores a rule's pattern as a map, nested at most 32 deep: deeper, storing it failed with a 500 (review 55).
    ["a pattern nested too deep", JSON.parse(`${'{"d":'.repeat(25)}["x"]${"}".repeat(25)}`), /nested deeper than 20/],
    ["a backslash escaping another character", { f: [{ wildcard: "a\\b*" }] }, /backslash/],
    ["an anything-but list of mixed types", { x: [{ "anything-but": ["a", 1] }] }, /only strings or only numbers/],
    ["an anything-but null", { x: [{ "anything-but": null }] }, /"x\[0\]\.anything-but"/],
    ["an anything-but empty prefix", { x: [{ "anything-but": { prefix: "" } }] }, /must not be empty/],
    ["an anything-but ignore-case prefix", { x: [{ "anything-but": { prefix: { "equals-ignore-case": "a" } } }] }, /must be a string/],
    ["an anything-but numeric wildcard", { x: [{ "anything-but": { wildcard: 123 } }] }, /must be a string/],
    [
      "an anything-but unsupported operator",
      { x: [{ "anything-but": { numeric: [">", 1] } }] },
      /"x\[0\]\.anything-but\.numeric".*supports only/,
    ],
    ["an $or with one branch", { $or: [{ a: ["x"] }] }, /"\$or".*at least 2/],
    ["an $or that is not an array", { $or: { a: ["x"] } }, /"\$or".*at least 2/],
    ["an invalid $or branch", { detail: { $or: [{ a: ["x"] }, { b: "y" }] } }, /"detail\.\$or\[1\]\.b"/],
  ])("rejects %s", (_description, pattern, message) => {
    expect(() => validatePattern(pattern)).toThrow(message);
  });
});
