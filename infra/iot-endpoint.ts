/**
 * The account's AWS IoT Core data endpoint (`iot:Data-ATS`): where functions that commit publish the feed's notices
 * (core feed/iot-notifier.ts reads `SIMROOT_IOT_DATA_ENDPOINT`), and where PEPs connect over MQTT to follow them.
 */
export const iotDataEndpoint = aws.iot.getEndpointOutput({ endpointType: "iot:Data-ATS" }).endpointAddress;

/** What core's `iotDataEndpoint()` reads: without it a function publishes no notice and PEPs on the channel hear nothing. */
export const feedChannelEnvironment = { SIMROOT_IOT_DATA_ENDPOINT: $interpolate`https://${iotDataEndpoint}` };
