/**
 * The modelled AWS cost of one idle PEP per month, today (a long poll holding a Lambda
 * instance) and on the push channel (an MQTT subscription to AWS IoT Core, plus a short poll
 * every `idlePollSeconds` to refresh the signed head). Prices: us-east-1, list prices, arm64
 * Lambda (what infra deploys); see docs/feed-distribution.md for the sources and the arithmetic.
 */
import { maxHeadLifetimeSeconds } from "../../packages/core/src/feed/wire.ts";

export const prices = {
  /** AWS Lambda (arm64): per GB-second of duration, and per request. */
  lambdaGbSecond: 0.0000133334,
  lambdaRequest: 0.2 / 1e6,
  /** Amazon API Gateway HTTP API, per request (first 300 million). */
  httpApiRequest: 1.0 / 1e6,
  /** AWS IoT Core: connectivity per connection-minute, messaging per message (5 KB increments, first billion). */
  iotConnectionMinute: 0.08 / 1e6,
  iotMessage: 1.0 / 1e6,
} as const;

const secondsPerMonth = 30 * 24 * 3600;

export interface CostAssumptions {
  /** Lambda memory, GB (the deployed default). */
  readonly memoryGb: number;
  /** Today: the long-poll wait, s (a PEP re-polls at once after each answer). */
  readonly waitSeconds: number;
  /**
   * Push: how often an idle PEP polls to refresh its signed head, s: half the head's lifetime (8 s), as the PEP does
   * (pep sync.ts), so that a head is renewed before it expires and the PEP never fails closed while nothing changes.
   */
  readonly idlePollSeconds: number;
  /** Push: billed duration of a short poll answered 304 by a warm instance, s. */
  readonly shortPollSeconds: number;
  /** Push: MQTT keep-alive, s (PINGREQs counted as messages, to be safe). */
  readonly keepAliveSeconds: number;
}

export const defaultAssumptions: CostAssumptions = {
  memoryGb: 1,
  waitSeconds: 25,
  idlePollSeconds: maxHeadLifetimeSeconds / 2,
  shortPollSeconds: 0.02,
  keepAliveSeconds: 300,
};

export function idlePepCost(assume: CostAssumptions = defaultAssumptions) {
  const longPolls = secondsPerMonth / assume.waitSeconds;
  const today = {
    "Lambda duration (an instance held all month)": secondsPerMonth * assume.memoryGb * prices.lambdaGbSecond,
    "Lambda requests": longPolls * prices.lambdaRequest,
    "HTTP API requests": longPolls * prices.httpApiRequest,
  };
  const shortPolls = secondsPerMonth / assume.idlePollSeconds;
  const push = {
    "IoT Core connectivity": (secondsPerMonth / 60) * prices.iotConnectionMinute,
    "IoT Core keep-alive pings": (secondsPerMonth / assume.keepAliveSeconds) * prices.iotMessage,
    "Lambda duration (short polls)": shortPolls * assume.shortPollSeconds * assume.memoryGb * prices.lambdaGbSecond,
    "Lambda requests": shortPolls * prices.lambdaRequest,
    "HTTP API requests": shortPolls * prices.httpApiRequest,
  };
  const total = (lines: Record<string, number>) => Object.values(lines).reduce((sum, value) => sum + value, 0);
  return { today, push, todayTotal: total(today), pushTotal: total(push) };
}

/** What one change costs on the push channel, per PEP: a notice delivered, and a short poll answered with the delta. */
export function perChangeCost(assume: CostAssumptions = defaultAssumptions, deltaPollSeconds = 0.05) {
  return prices.iotMessage + prices.lambdaRequest + prices.httpApiRequest + deltaPollSeconds * assume.memoryGb * prices.lambdaGbSecond;
}
