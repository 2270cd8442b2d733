/**
 * Where the audit archive goes: an S3 bucket in AWS (each object written with a SHA-256 checksum
 * S3 verifies on receipt), a folder locally (each object written whole, then renamed into place).
 */
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { ArchiveStore } from "./archive.ts";

export function s3ArchiveStore(client: S3Client, bucket: string): ArchiveStore {
  return {
    async put(key, body) {
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: "application/x-ndjson", ChecksumAlgorithm: "SHA256" }),
      );
    },
  };
}

export function directoryArchiveStore(directory: string): ArchiveStore {
  return {
    async put(key, body) {
      const path = join(directory, ...key.split("/"));
      await mkdir(dirname(path), { recursive: true });
      const partial = `${path}.partial`;
      await writeFile(partial, body);
      await rename(partial, path);
    },
  };
}
