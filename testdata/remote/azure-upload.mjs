// Uploads every file under a local directory to an Azure Blob container
// (created if missing), each under its path relative to the directory: how
// the object store tests put their backup tree into Azurite. Azure's own
// JavaScript client, so nothing of etcd-rescue writes what it then reads.
//
//   node azure-upload.mjs CONNECTION_STRING CONTAINER DIR
import { BlobServiceClient } from "@azure/storage-blob";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const [conn, containerName, root] = process.argv.slice(2);
if (!root) {
  console.error("usage: node azure-upload.mjs CONNECTION_STRING CONTAINER DIR");
  process.exit(2);
}
const service = BlobServiceClient.fromConnectionString(conn);
const container = service.getContainerClient(containerName);
await container.createIfNotExists();

function* files(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else yield p;
  }
}

let n = 0;
for (const p of files(root)) {
  await container.getBlockBlobClient(relative(root, p)).uploadFile(p);
  n++;
}
console.log(`uploaded ${n} blobs to ${containerName}`);
