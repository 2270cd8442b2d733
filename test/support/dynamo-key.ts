/**
 * Each test file's own database in the run's DynamoDB Local (started without `-sharedDb`, global-setup.ts): its clients
 * send this access key (config `dynamoLocalCredentials`), and the processes it starts inherit it.
 *
 * DynamoDB Local's writes to a table with a stream take time in proportion to all the stream records of their
 * database: in one shared database, a file late in the run took 15 times as long as alone (review 146).
 */
import { randomBytes } from "node:crypto";

process.env.SIMROOT_DYNAMODB_LOCAL_KEY = `file${randomBytes(6).toString("hex")}`;
