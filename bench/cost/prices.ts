/**
 * Published AWS prices, us-east-1, on-demand, as read from the pricing pages on the date below
 * (no internet from this machine: check each page before relying on a figure).
 */
export const pricesAsOf = "2026-12-02 (from the pages as last read; verify before quoting)";

export const prices = {
  dynamodb: {
    url: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    perMillionWriteUnits: 0.625,
    perMillionReadUnits: 0.125,
    storagePerGbMonth: 0.25,
    pitrPerGbMonth: 0.2,
    /** Provisioned capacity, for the "what it takes" scenarios (https://aws.amazon.com/dynamodb/pricing/provisioned/). */
    provisionedWcuHour: 0.00065,
    provisionedRcuHour: 0.00013,
  },
  eventbridge: { url: "https://aws.amazon.com/eventbridge/pricing/", perMillionEvents: 1.0, pipesPerMillionRequests: 0.4 },
  /** Standard queues: a request per 64 KB chunk of payload (an applier entry is at most 60 KB: one). */
  sqs: { url: "https://aws.amazon.com/sqs/pricing/", perMillionRequests: 0.4 },
  lambda: { url: "https://aws.amazon.com/lambda/pricing/", perMillionRequests: 0.2, arm64PerGbSecond: 0.0000133334 },
  apiGateway: { url: "https://aws.amazon.com/api-gateway/pricing/", httpApiPerMillion: 1.0 },
  kms: { url: "https://aws.amazon.com/kms/pricing/", perKeyMonth: 1.0, asymmetricPerMillionRequests: 15.0 },
  cloudwatchLogs: { url: "https://aws.amazon.com/cloudwatch/pricing/", ingestPerGb: 0.5 },
  s3: { url: "https://aws.amazon.com/s3/pricing/", glacierInstantPerGbMonth: 0.004 },
  iotCore: {
    url: "https://aws.amazon.com/iot-core/pricing/",
    connectivityPerMillionMinutes: 0.08,
    /** Messages, 5 KB increments: $1.00 per million up to 1 billion a month, $0.80 beyond (next 4 billion). */
    messagingPerMillionFirstBillion: 1.0,
    messagingPerMillionNext: 0.8,
    rulesPerMillionTriggered: 0.15,
    actionsPerMillion: 0.15,
  },
  deviceDefender: {
    url: "https://aws.amazon.com/iot-device-defender/pricing/",
    auditPerDeviceMonth: 0.0013,
    /** Rules Detect, cloud-side metrics. */
    detectPerDeviceMonth: 0.0045,
  },
} as const;
