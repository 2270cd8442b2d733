/**
 * The feed's push channel in AWS: IoT Core carries "the head of tenant T moved to V" from the function that committed
 * (`iot:Publish` on `simroot/*`, granted by the platform definition) to every PEP subscribed over MQTT, so that no PEP
 * holds a Lambda instance for a long poll. PEPs authenticate with their feed API key through this custom authorizer
 * (core feed/subscriber-authorizer.ts): each may receive its own tenant's topic and nothing else.
 *
 * A PEP connects to `mqtts://<feedMqttHost>:443` (ALPN `mqtt`) with the username
 * `simroot-pep?x-amz-customauthorizer-name=<feedAuthorizer>` (the daemon's `--feed push`).
 */
import { functionArgs } from "./functions";
import { iotDataEndpoint } from "./iot-endpoint";

const fn = new sst.aws.Function("FeedAuthorizer", functionArgs("feedAuthorizer"));
/** The authorizer's function (its errors are alarmed: infra/ops.ts). */
export const feedAuthorizerFunction = fn;

export const feedAuthorizer = new aws.iot.Authorizer("FeedMqttAuthorizer", {
  name: `${$app.name}-${$app.stage}-feed`,
  authorizerFunctionArn: fn.arn,
  // The password is the PEP's API key, checked by the function against the key's stored hash.
  signingDisabled: true,
  status: "ACTIVE",
  enableCachingForHttp: false,
});

new aws.lambda.Permission("FeedMqttAuthorizerInvoke", {
  action: "lambda:InvokeFunction",
  function: fn.name,
  principal: "iot.amazonaws.com",
  sourceArn: feedAuthorizer.arn,
});

export const feedMqttHost = iotDataEndpoint;
