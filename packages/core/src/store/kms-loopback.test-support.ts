/**
 * A loopback server speaking KMS's JSON protocol (`X-Amz-Target: TrentService.<Operation>`,
 * `application/x-amz-json-1.1`), for tests that run the real @aws-sdk/client-kms client up to
 * the network boundary. `operations` answers each call; an unknown key or operation gets KMS's error.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { KMSClient } from "@aws-sdk/client-kms";

export type KmsAnswer = readonly [status: number, payload: unknown];
export type KmsOperation = (body: Record<string, string>) => KmsAnswer;

export async function startLoopbackKms(keyArn: string, operations: Record<string, KmsOperation>) {
  const seen: { target: string; authorization: string; body: Record<string, unknown> }[] = [];
  const server = createServer(async (request, response) => {
    let text = "";
    for await (const chunk of request) text += chunk;
    const body = JSON.parse(text) as Record<string, string>;
    const target = String(request.headers["x-amz-target"]);
    seen.push({ target, authorization: String(request.headers.authorization), body });
    const operation = operations[target.replace(/^TrentService\./, "")];
    const [status, payload]: KmsAnswer =
      body.KeyId !== keyArn
        ? [400, { __type: "NotFoundException", message: `Key '${body.KeyId}' does not exist` }]
        : operation
          ? operation(body)
          : [400, { __type: "UnknownOperationException" }];
    response.writeHead(status, { "content-type": "application/x-amz-json-1.1" });
    response.end(JSON.stringify(payload));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    seen,
    client: () => new KMSClient({ endpoint, region: "eu-west-1", credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" } }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
