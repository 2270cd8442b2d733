/**
 * The simroot API's paths and schemas, generated from its OpenAPI document by openapi-typescript.
 * Do not edit: run `npm run sdk:generate` after changing a route.
 */

export interface paths {
    "/health": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Report the state of the store and the bus */
        get: operations["listHealth"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/devices/lookup": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Find a device by any identifier: EID, ICCID, IMSI, IMEI, MSISDN, NAI, SUPI or current IP
         * @description With `ip` and `at`: the device that held the address at that time (from the sessions' history, whatever order they were reported in).
         */
        get: operations["listDevicesLookup"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/devices": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List the tenant's devices, oldest first */
        get: operations["listDevices"];
        put?: never;
        /** Register a device by its SIM identity */
        post: operations["createDevices"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/devices/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get a device */
        get: operations["getDevicesById"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        /**
         * Rename, relabel (labels are replaced whole) or change the IMEI lock; needs If-Match
         * @description A revoked device keeps the labels it was revoked with (409 device.revoked): the PEPs of those labels are served the addresses its revocation released.
         */
        patch: operations["updateDevicesById"];
        trace?: never;
    };
    "/v1/devices/{id}/timeline": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The device's event timeline, oldest first */
        get: operations["listDevicesByIdTimeline"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/devices/{id}/{action}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Suspend, quarantine, reinstate or revoke (terminal) a device, with a reason
         * @description Audited, and published as device.suspended / device.quarantined / device.reinstated / device.revoked. Enforcement points learn it through the feed. An operator's report lifts only the operator's hold (`identity.holds`), never simroot's; a reinstatement here lifts both.
         */
        post: operations["createDevicesByIdByAction"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/devices/{id}/sessions": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The device's active sessions, one per bearer */
        get: operations["listDevicesByIdSessions"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/devices/{id}/profiles": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The eUICC profiles the device's eSIM manager reported (SGP.32) */
        get: operations["listDevicesByIdProfiles"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/keys": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List the tenant's API keys (never their secrets) */
        get: operations["listKeys"];
        put?: never;
        /** Create an API key with a role (admin, operator, viewer, pep); its token is shown once */
        post: operations["createKeys"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/keys/{id}/rotate": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Give a key a new secret (the old one stops working at once on this instance, within 1 s on the others); the token is shown once */
        post: operations["createKeysByIdRotate"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/keys/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Revoke a key */
        delete: operations["removeKeysById"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/tenant": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The caller's tenant and its settings */
        get: operations["listTenant"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/tenant/settings": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        /** Change tenant settings (IMEI lock default, allowed countries, enforcement fail mode, rate limits); needs If-Match */
        patch: operations["updateTenantSettings"];
        trace?: never;
    };
    "/v1/tenants": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Create a tenant and its first admin key (platform tenant admins only) */
        post: operations["createTenants"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/policies": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List the tenant's policy rules, oldest first */
        get: operations["listPolicies"];
        put?: never;
        /** Create a policy rule (allow or deny devices matching a label selector to reach destinations) */
        post: operations["createPolicies"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/policies/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get a policy rule (its ETag is its revision) */
        get: operations["getPoliciesById"];
        /** Replace a policy rule whole; needs If-Match */
        put: operations["replacePoliciesById"];
        post?: never;
        /** Delete a policy rule; needs If-Match */
        delete: operations["removePoliciesById"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/enforcement": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The tenant's enforcement settings: quarantine destinations and fail mode (ETag "0" until first set) */
        get: operations["listEnforcement"];
        /** Replace the enforcement settings; needs If-Match (the fail mode is an admin's to change) */
        put: operations["replaceEnforcement"];
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/decisions/evaluate": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * What-if: how the current policy decides a connection of a device named by any identifier
         * @description Runs the same engine enforcement points run, on the tenant's current rules, grants and enforcement settings and the device's current state and labels. Nothing is written.
         */
        post: operations["createDecisionsEvaluate"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/traffic": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The traffic map: segments (devices grouped by a label) to destinations, allowed and denied, from flow reports */
        get: operations["listTraffic"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/policies/preview": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Before saving a rule (or removing one): the reported connections it would newly allow or deny, and the devices it selects */
        post: operations["createPoliciesPreview"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/source-health": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** How each ingestion source is doing: last request and event, accepted events and rejected items */
        get: operations["listSourceHealth"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/grants": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List the tenant's grants, oldest first (expired and revoked ones included for 90 days after they ended) */
        get: operations["listGrants"];
        put?: never;
        /** Grant a third party time-limited access to a device or a labelled group of devices */
        post: operations["createGrants"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/grants/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get a grant */
        get: operations["getGrantsById"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/grants/{id}/revoke": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** End a grant now, before its notAfter */
        post: operations["createGrantsByIdRevoke"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sources": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List the tenant's ingestion sources */
        get: operations["listSources"];
        put?: never;
        /** Create an ingestion source (its credentials are shown this once) */
        post: operations["createSources"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sources/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get an ingestion source */
        get: operations["getSourcesById"];
        put?: never;
        post?: never;
        /** Delete an ingestion source: its sender is refused from then on (at once on this instance, within 5 s on the others); its credentials and health are erased, the deletion audited */
        delete: operations["removeSourcesById"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/sources/{id}/rotate": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Replace the source's credentials (the old ones stop working at once on this instance, within 5 s on the others) */
        post: operations["createSourcesByIdRotate"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/ingest/{sourceId}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Receive a webhook from an operator core or eSIM manager
         * @description The body is in the source's format (simroot, camara, nef, datastreamer, supersim, eim) and is authenticated with the source's own credentials (Standard Webhooks signature, Bearer token, Basic auth or X-Twilio-Signature), not an API key. 202 means every accepted event is durably queued for the applier; items the adapter refused are listed per index.
         */
        post: operations["createIngestBySourceId"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/dead-letters": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Accepted events that could not be applied yet, with the reason */
        get: operations["listDeadLetters"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/dead-letters/{id}/replay": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Send a parked event to the applier again (it leaves the list once applied) */
        post: operations["createDeadLettersByIdReplay"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/feed": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The signed, incremental feed enforcement points poll
         * @description Without `since`: a snapshot, page by page (`next`). With `since`: every change after that version, answered as soon as one lands when `wait` is given. Every response carries a head signed with Ed25519 (tenant, version, content hash, expiry of at most 8 s) and, as its ETag, the version it reaches. With `If-None-Match: "<version>"`, an idle poll is answered 304 with the re-signed head in `simroot-feed-head`. 410 `feed.snapshot_required` when the version is older than the retained deltas. A delta poll with `Accept: text/event-stream`, on a control plane that streams (a long-running server; not behind API Gateway, which answers it as a long poll), is answered as server-sent events for `wait` seconds on one connection: `deltas` (data: a feed response continuing the previous event), `head` (data: the re-signed idle head, at least every 4 s) and `snapshot_required`.
         */
        get: operations["listFeed"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/feed/keys": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The feed's public signing key, for configuring (pinning) enforcement points */
        get: operations["listFeedKeys"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/feed/epoch": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Advance the tenant's feed epoch: the recovery path after a restore of the control plane or a rebuild with a new feed key
         * @description Every signed head carries the epoch. A PEP refuses a version below the one it holds unless it comes as a snapshot of a higher epoch, so after a restore (the tenant's head went back) PEPs stay closed until an admin advances the epoch; they then take the restored state. The new epoch is the time of the advance in seconds (at least one above the previous). Audited.
         */
        post: operations["createFeedEpoch"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/flows": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Report aggregated flow records (for anomaly detection) */
        post: operations["createFlows"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/audit/export": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The whole audit chain (or one subject's records) as JSON Lines, for archiving and incident reports */
        get: operations["listAuditExport"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/audit": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Audit records: the whole chain in order, or one device's by time */
        get: operations["listAudit"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/audit/verify": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Verify the tenant's hash chain from its signed checkpoint (or whole, for admins) and report the first break, if any
         * @description Walks the records after the last signed checkpoint (O(new records)); each must chain from the checkpoint's signed hash, and the last must be the tenant's head. It only reads: the checkpoint is moved by the audit archiver (hourly) and by an admin's `POST /v1/audit/checkpoint`. `full=true` (admin keys only) walks the whole chain.
         */
        get: operations["listAuditVerify"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/audit/checkpoint": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Verify what is new since the signed checkpoint and, if it verifies, sign the point reached and move the checkpoint there
         * @description The audit archiver does this every hour for every tenant; an admin may do it now (before an incident report, say). `GET /v1/audit/verify` only reads. A walk that does not verify leaves the checkpoint where it is and reports the first break.
         */
        post: operations["createAuditCheckpoint"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/live": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The tenant's changes as they commit (server-sent events), for consoles and dashboards
         * @description Events: `change` (id = the feed version; data `{version, changes: [{kind, key}]}`) and `reset` (the version you resumed from is older than the retained changes: reload). Send `Last-Event-ID` (or `since`) to resume without a gap.
         */
        get: operations["listLive"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/automation/rules": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List the tenant's automation rules */
        get: operations["listAutomationRules"];
        put?: never;
        /** Create an automation rule: an EventBridge pattern over simroot's events and the actions to take */
        post: operations["createAutomationRules"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/automation/rules/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get an automation rule */
        get: operations["getAutomationRulesById"];
        put?: never;
        post?: never;
        /** Remove a rule; needs If-Match */
        delete: operations["removeAutomationRulesById"];
        options?: never;
        head?: never;
        /** Change a rule (pattern, actions, dry-run, enabled, rate limit); needs If-Match */
        patch: operations["updateAutomationRulesById"];
        trace?: never;
    };
    "/v1/webhooks": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List the tenant's webhook subscriptions */
        get: operations["listWebhooks"];
        put?: never;
        /** Subscribe a URL to the events matching a pattern; a v1 secret is shown in this answer only */
        post: operations["createWebhooks"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Get a webhook subscription (disabled ones say why) */
        get: operations["getWebhooksById"];
        put?: never;
        post?: never;
        /** Remove a subscription (its pending deliveries fail); needs If-Match */
        delete: operations["removeWebhooksById"];
        options?: never;
        head?: never;
        /** Change a subscription's URL, pattern or description, or enable it again; needs If-Match */
        patch: operations["updateWebhooksById"];
        trace?: never;
    };
    "/v1/webhooks/{id}/rotate-secret": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** A new signing secret (v1, shown in this answer only) or key pair (v1a); for a day each delivery is signed with both, new and previous */
        post: operations["createWebhooksByIdRotateSecret"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}/deliveries": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The delivery log: each delivery with its status and last attempts, newest first (of the events the caller's role may read) */
        get: operations["listWebhooksByIdDeliveries"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/webhooks/{id}/deliveries/{deliveryId}/replay": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Send a delivery again, with the same webhook-id: due now, attempted by the webhook worker's next run */
        post: operations["createWebhooksByIdDeliveriesByDeliveryIdReplay"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/incidents": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** List the tenant's incidents */
        get: operations["listIncidents"];
        put?: never;
        /** Open an incident for a device (the device's open incident when it has one) */
        post: operations["createIncidents"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/incidents/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** An incident with what it gathered: the device's timeline, the anomalies and the actions taken */
        get: operations["getIncidentsById"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/incidents/{id}/nis2": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** NIS2 Art. 23 drafts from the incident: early warning (24 h), notification (72 h), final report (1 month) */
        get: operations["listIncidentsByIdNis2"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/incidents/{id}/close": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Close an incident with a summary */
        post: operations["createIncidentsByIdClose"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/integrations/cloudflare/posture": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Cloudflare custom device posture: a 0-100 score per WARP device from simroot's verdict
         * @description The service-to-service endpoint of a Cloudflare One custom device posture integration. A WARP device maps to the device whose `cloudflare/device` label holds its `device_id`, or whose IMEI is its `serial_number`; unknown devices score 0.
         */
        post: operations["createIntegrationsCloudflarePosture"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/ocsf/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The audit trail or the PEPs' flow reports as OCSF events (JSON Lines), for a SIEM */
        get: operations["listOcsfEvents"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/bus/dead-letters": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Events a consumer did not take after its retries (the bus's dead letters), with the rule and the reason
         * @description Kept 14 days. Locally the bus records them; in AWS the drain function records what reaches each rule's SQS dead-letter queue. Rule `outbox`: a committed event the bus itself refused for good (over EventBridge's entry size, or malformed), with the place of its audit record (`record`); the outbox went on without it, and it cannot be redriven. Rule `outbox` with `held`: a committed event the bus did not take for 12 hours (down, throttling, a permission missing), set aside before the audit table's stream dropped it (24 hours); a redrive publishes it. Not the parked facts of `/v1/dead-letters` (accepted events waiting for their device).
         */
        get: operations["listBusDeadLetters"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/v1/bus/dead-letters/{id}/redrive": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Hand a dead letter back to its consumer (that rule only); audited. If it fails again it comes back as a new dead letter
         * @description 409 for a letter of rule `outbox` the bus refused: it refused the event itself, so it has no consumer to hand it back to. A `held` one is published again from its audit record, with its own id, to every rule (as the outbox would have). 409 `dead_letter.too_old` for an event older than 6 days: its consumers no longer know it by its id, and would act on it twice. The event is handed back before the letter is forgotten: 503 when it could not be (the letter stays as it was); a redrive interrupted after the hand-back leaves the letter listed, and a second one hands the event back again, which its consumer takes as a redelivery.
         */
        post: operations["createBusDeadLettersByIdRedrive"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        Health: {
            /** @enum {string} */
            status: "ok" | "degraded";
            components: {
                [key: string]: {
                    /** @enum {string} */
                    status: "ok" | "down";
                    detail?: {
                        [key: string]: unknown;
                    };
                };
            };
        };
        Device: {
            /** @example dev_01JD3Q4ZK8W9X2V5N6M7P8R9ST */
            id: string;
            tenantId: string;
            name?: string;
            /** @enum {string} */
            state: "active" | "suspended" | "quarantined" | "revoked";
            eid?: string;
            iccids: string[];
            imsi?: string;
            imei?: string;
            msisdn?: string;
            externalId?: string;
            labels: {
                [key: string]: string;
            };
            imeiLock?: boolean;
            allowedCountries?: string[];
            /** @description SHA-256 of the credential's SubjectPublicKeyInfo, hex */
            credentialFingerprint?: string;
            identity: components["schemas"]["IdentityState"];
            createdAt: string;
            updatedAt: string;
            revision: number;
        };
        IdentityState: {
            /** @enum {string} */
            state: "active" | "suspended" | "quarantined" | "revoked";
            stateReason?: string;
            stateAt: string;
            /** @description simroot's hold and each ingestion source's (`sources`, by source id; `operator`: one kept before holds were kept per source): a source's report lifts only its own */
            holds?: {
                simroot?: {
                    /** @enum {string} */
                    state: "suspended" | "quarantined";
                    reason?: string;
                    at: string;
                    /** @description the IMEI lock's hold: the equipment it was imposed for */
                    imei?: string;
                    /** @description simroot's reinstatements that do not lift this hold: taken before the report that imposed it arrived, though dated after it */
                    spares?: string[];
                    /** @description the hold this one replaced, which the reinstatements it `spares` do not lift: it stands when they lift this one */
                    behind?: {
                        /** @enum {string} */
                        state: "suspended" | "quarantined";
                        reason?: string;
                        at: string;
                        /** @description the IMEI lock's hold: the equipment it was imposed for */
                        imei?: string;
                        /** @description simroot's reinstatements that do not lift this hold: taken before the report that imposed it arrived, though dated after it */
                        spares?: string[];
                    };
                };
                operator?: {
                    /** @enum {string} */
                    state: "suspended" | "quarantined";
                    reason?: string;
                    at: string;
                    /** @description the IMEI lock's hold: the equipment it was imposed for */
                    imei?: string;
                    /** @description simroot's reinstatements that do not lift this hold: taken before the report that imposed it arrived, though dated after it */
                    spares?: string[];
                    /** @description the hold this one replaced, which the reinstatements it `spares` do not lift: it stands when they lift this one */
                    behind?: {
                        /** @enum {string} */
                        state: "suspended" | "quarantined";
                        reason?: string;
                        at: string;
                        /** @description the IMEI lock's hold: the equipment it was imposed for */
                        imei?: string;
                        /** @description simroot's reinstatements that do not lift this hold: taken before the report that imposed it arrived, though dated after it */
                        spares?: string[];
                    };
                };
                sources?: {
                    [key: string]: {
                        /** @enum {string} */
                        state: "suspended" | "quarantined";
                        reason?: string;
                        at: string;
                        /** @description the IMEI lock's hold: the equipment it was imposed for */
                        imei?: string;
                        /** @description simroot's reinstatements that do not lift this hold: taken before the report that imposed it arrived, though dated after it */
                        spares?: string[];
                        /** @description the hold this one replaced, which the reinstatements it `spares` do not lift: it stands when they lift this one */
                        behind?: {
                            /** @enum {string} */
                            state: "suspended" | "quarantined";
                            reason?: string;
                            at: string;
                            /** @description the IMEI lock's hold: the equipment it was imposed for */
                            imei?: string;
                            /** @description simroot's reinstatements that do not lift this hold: taken before the report that imposed it arrived, though dated after it */
                            spares?: string[];
                        };
                    };
                };
            };
            imei?: string;
            /** @description when the report that named the device's current equipment (or said it changed without naming it) was made; absent for the IMEI it was registered with */
            imeiSince?: string;
            sessions: {
                cellular?: components["schemas"]["Session"];
                "private-5g"?: components["schemas"]["Session"];
                wifi?: components["schemas"]["Session"];
                satellite?: components["schemas"]["Session"];
            };
            roaming?: {
                roaming: boolean;
                mcc?: string;
                country?: string;
                since: string;
            };
            reachable?: {
                reachable: boolean;
                via?: string;
                since: string;
            };
            profiles: {
                [key: string]: components["schemas"]["Profile"];
            };
        };
        Session: {
            /**
             * @description how the device reaches the network: public cellular, private LTE/5G, Wi-Fi via EAP-SIM/AKA, satellite NTN
             * @enum {string}
             */
            bearer: "cellular" | "private-5g" | "wifi" | "satellite";
            rat?: string;
            plmn?: components["schemas"]["Plmn"];
            country?: string;
            apn?: string;
            ipv4?: string;
            ipv6?: string;
            since: string;
        };
        Plmn: {
            mcc: string;
            mnc: string;
        };
        Profile: {
            iccid: string;
            eid: string;
            /** @enum {string} */
            state: "installed" | "enabled" | "disabled" | "deleted" | "failed";
            seqNumber?: number;
            reason?: string;
            at: string;
        };
        /** @description RFC 9457 problem details */
        Problem: {
            /** @example urn:simroot:problem:request.invalid */
            type: string;
            title: string;
            status: number;
            detail: string;
            instance: string;
            requestId: string;
            errors?: {
                path: string;
                message: string;
            }[];
        };
        DevicePage: {
            items: components["schemas"]["Device"][];
            /** @description cursor of the next page */
            next?: string;
        };
        TimelinePage: {
            items: components["schemas"]["TimelineEntry"][];
            /** @description cursor of the next page */
            next?: string;
        };
        TimelineEntry: {
            seq: number;
            eventId: string;
            type: string;
            time: string;
            actor: string;
            data: {
                [key: string]: unknown;
            };
        };
        DeviceActionInput: {
            reason: string;
        };
        ApiKeyWithToken: {
            key: components["schemas"]["ApiKey"];
            /** @description shown this once only */
            token: string;
        };
        ApiKey: {
            keyId: string;
            tenantId: string;
            /** @enum {string} */
            role: "admin" | "operator" | "viewer" | "ingest" | "pep";
            name: string;
            createdAt: string;
            rotatedAt?: string;
            revokedAt?: string;
            /** @description a pep key's label selector (canonical): the feed it reads is that selector's view (or a narrower one it asks for), never the whole tenant's */
            selector?: string;
        };
        ApiKeyPage: {
            items: components["schemas"]["ApiKey"][];
            /** @description cursor of the next page */
            next?: string;
        };
        Tenant: {
            id: string;
            name: string;
            settings: components["schemas"]["TenantSettings"];
            platform?: boolean;
            createdAt: string;
            /** @default 1 */
            revision?: number;
            /** @description the rate limits counted now, requests a minute: each of `settings.rateLimits` held to the deployment's ceiling (`rateLimitCeilings`). Lower than the setting when the operator lowered a ceiling below it since it was set */
            appliedRateLimits: {
                apiKeyPerMinute: number;
                pepKeyPerMinute: number;
                sourcePerMinute: number;
            };
            /** @description what the tenant's requests may add up to a minute over all its credentials of a kind, set by the deployment (SIMROOT_RATE_LIMIT_TENANT_API_KEYS_PER_MINUTE, _PEP_KEYS_PER_MINUTE, _SOURCES_PER_MINUTE), not by the tenant: past one, `429 rate.limited` with the policy `"tenant"` */
            tenantRateLimits: {
                apiKeysPerMinute: number;
                pepKeysPerMinute: number;
                sourcesPerMinute: number;
            };
            /** @description the deployment's ceilings on the rate limits (SIMROOT_RATE_LIMIT_MAX_API_KEY_PER_MINUTE, _PEP_KEY_PER_MINUTE, _SOURCE_PER_MINUTE): a setting above one is refused (400 tenant_settings.rate_limit_above_ceiling), one stored above it is held to it */
            rateLimitCeilings: {
                apiKeyPerMinute: number;
                pepKeyPerMinute: number;
                sourcePerMinute: number;
            };
        };
        TenantSettings: {
            /**
             * @description quarantine a device when its IMEI changes (devices may override)
             * @default true
             */
            imeiLock?: boolean;
            /**
             * @description countries devices may roam into; empty means anywhere
             * @default []
             */
            allowedCountries?: string[];
            /**
             * @description allowed countries for the devices a label selector matches (the first matching rule wins; a device's own list wins over all)
             * @default []
             */
            countryRules?: {
                selector: components["schemas"]["LabelSelector"];
                allowedCountries: string[];
            }[];
            /**
             * @description what enforcement points do when they cannot decide (the enforcement settings' fail mode)
             * @default closed
             * @enum {string}
             */
            failMode?: "closed" | "open";
            /**
             * @description rate limits per API key and per source, held across every instance of the control plane, each at most the deployment's ceiling (60,000, 600,000 and 60,000 a minute unless the operator set others); a limit stored above its ceiling is held to it
             * @default {
             *       "apiKeyPerMinute": 6000,
             *       "pepKeyPerMinute": 120000,
             *       "sourcePerMinute": 6000
             *     }
             */
            rateLimits?: {
                /**
                 * @description requests per minute each API key of the tenant may make; past it, 429 with Retry-After until the minute ends. At most the deployment's ceiling (400 tenant_settings.rate_limit_above_ceiling above it)
                 * @default 6000
                 */
                apiKeyPerMinute?: number;
                /**
                 * @description requests per minute each enforcement point key (a fleet of PEPs may share one: 1,000 PEPs re-polling every 4 s make 15,000 a minute) may make; past it, 429 with Retry-After until the minute ends. At most the deployment's ceiling (400 tenant_settings.rate_limit_above_ceiling above it)
                 * @default 120000
                 */
                pepKeyPerMinute?: number;
                /**
                 * @description requests per minute each ingestion source of the tenant (one webhook request carries up to 1,000 events) may make; past it, 429 with Retry-After until the minute ends. At most the deployment's ceiling (400 tenant_settings.rate_limit_above_ceiling above it)
                 * @default 6000
                 */
                sourcePerMinute?: number;
            };
        };
        /**
         * @description Kubernetes label selector: every matchLabels pair and every expression must hold. NotIn also matches devices without the key. An empty selector matches every device.
         * @example {
         *       "matchLabels": {
         *         "fleet": "meters"
         *       },
         *       "matchExpressions": [
         *         {
         *           "key": "site",
         *           "operator": "In",
         *           "values": [
         *             "lyon",
         *             "porto"
         *           ]
         *         }
         *       ]
         *     }
         */
        LabelSelector: {
            matchLabels?: {
                [key: string]: string;
            };
            matchExpressions?: {
                key: string;
                /** @enum {string} */
                operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
                values?: string[];
            }[];
        };
        /** @description a policy rule with its revision */
        Policy: {
            /** @example pol_01JD3Q4ZK8W9X2V5N6M7P8R9ST */
            id: string;
            name: string;
            selector: components["schemas"]["LabelSelector"];
            destinations: components["schemas"]["Destination"][];
            conditions?: components["schemas"]["Conditions"];
            /** @enum {string} */
            effect: "allow" | "deny";
            /** @description increases with every change; the HTTP ETag */
            revision: number;
            createdAt: string;
            updatedAt: string;
        };
        /**
         * @example {
         *       "fqdn": "*.telemetry.example.com",
         *       "ports": [
         *         443
         *       ],
         *       "protocol": "tcp"
         *     }
         */
        Destination: {
            /** @description exact host, or `*.example.com` for its subdomains (not the apex) */
            fqdn?: string;
            /**
             * @description IPv4 or IPv6 network, host bits zero
             * @example 10.20.0.0/16
             */
            cidr?: string;
            /**
             * @description ports or inclusive ranges; absent means any port
             * @example [
             *       443,
             *       {
             *         "from": 8000,
             *         "to": 8099
             *       }
             *     ]
             */
            ports?: (number | components["schemas"]["PortRange"])[];
            /** @enum {string} */
            protocol: "tcp" | "udp" | "any";
        } & (unknown | unknown);
        /**
         * @description an inclusive range of ports; from must not exceed to
         * @example {
         *       "from": 8000,
         *       "to": 8099
         *     }
         */
        PortRange: {
            from: number;
            to: number;
        };
        /** @description every condition given must hold; an absent condition does not restrict. A request whose country is unknown does not satisfy a countries condition. */
        Conditions: {
            bearers?: ("cellular" | "private-5g" | "wifi" | "satellite")[];
            countries?: string[];
            schedule?: components["schemas"]["Schedule"];
        };
        /**
         * @description local wall-clock windows in `timezone`; `days` are the days a window starts on, and a window whose end is before its start runs past midnight into the next day
         * @example {
         *       "timezone": "Europe/Paris",
         *       "windows": [
         *         {
         *           "days": [
         *             "mon",
         *             "tue",
         *             "wed",
         *             "thu",
         *             "fri"
         *           ],
         *           "start": "22:00",
         *           "end": "06:00"
         *         }
         *       ]
         *     }
         */
        Schedule: {
            /** @example Europe/Paris */
            timezone: string;
            windows: {
                days: ("mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun")[];
                start: string;
                end: string;
            }[];
        };
        /**
         * @description a rule as the caller writes it; the id is assigned at creation
         * @example {
         *       "name": "Meters send telemetry",
         *       "selector": {
         *         "matchLabels": {
         *           "fleet": "meters"
         *         }
         *       },
         *       "destinations": [
         *         {
         *           "fqdn": "ingest.example.com",
         *           "ports": [
         *             8883
         *           ],
         *           "protocol": "tcp"
         *         }
         *       ],
         *       "conditions": {
         *         "bearers": [
         *           "cellular",
         *           "private-5g"
         *         ]
         *       },
         *       "effect": "allow"
         *     }
         */
        PolicyInput: {
            name: string;
            selector: components["schemas"]["LabelSelector"];
            destinations: components["schemas"]["Destination"][];
            conditions?: components["schemas"]["Conditions"];
            /** @enum {string} */
            effect: "allow" | "deny";
        };
        PolicyPage: {
            items: components["schemas"]["Policy"][];
            /** @description cursor of the next page */
            next?: string;
        };
        /** @description quarantine destinations and fail mode, with their revision */
        Enforcement: {
            /** @default [] */
            quarantineDestinations?: components["schemas"]["Destination"][];
            /**
             * @description what a PEP does when it cannot decide (no policy, evaluation error): closed denies, open allows
             * @default closed
             * @enum {string}
             */
            failMode?: "closed" | "open";
            /** @description 0 until first written; the HTTP ETag */
            revision: number;
            updatedAt?: string;
        };
        EnforcementSettings: {
            /** @description Default: `[]`. */
            quarantineDestinations?: components["schemas"]["Destination"][];
            /**
             * @description what a PEP does when it cannot decide (no policy, evaluation error): closed denies, open allows. Default: `"closed"`.
             * @enum {string}
             */
            failMode?: "closed" | "open";
        };
        /** @description the decision an enforcement point would make, and for which device */
        WhatIfDecision: {
            allow: boolean;
            /** @enum {string} */
            reason: "allow.rule" | "allow.grant" | "allow.quarantine" | "allow.fail-open" | "deny.default" | "deny.rule" | "deny.revoked" | "deny.suspended" | "deny.quarantined" | "deny.fail-closed";
            ruleId?: string;
            grantId?: string;
            /** @description set on allow.grant: the PEP must record the session */
            sessionRecording?: boolean;
            explanation: string;
            deviceId: string;
            /** @enum {string} */
            deviceState: "active" | "suspended" | "quarantined" | "revoked";
            /** @description the instant decided for */
            at: string;
            /** @description the feed version the policy set was loaded at (or later) */
            policyVersion: number;
        };
        /**
         * @example {
         *       "device": {
         *         "imsi": "208011234567890"
         *       },
         *       "destination": {
         *         "fqdn": "ingest.example.com",
         *         "ip": "203.0.113.10"
         *       },
         *       "port": 8883,
         *       "protocol": "tcp",
         *       "bearer": "cellular",
         *       "country": "FR"
         *     }
         */
        WhatIfRequest: {
            device: components["schemas"]["DeviceRef"];
            destination: {
                ip?: string;
                fqdn?: string;
            };
            port: number;
            /** @enum {string} */
            protocol: "tcp" | "udp";
            /**
             * @description the bearer the connection arrives on; absent, it is unknown and meets no bearer condition, as at an enforcement point that knows no bearer for the address
             * @enum {string}
             */
            bearer?: "cellular" | "private-5g" | "wifi" | "satellite";
            country?: string;
            /**
             * Format: date-time
             * @description the instant to decide for; now when absent
             */
            at?: string;
            /** @description the third party connecting under a grant */
            principal?: string;
        };
        DeviceRef: {
            deviceId?: string;
            eid?: string;
            iccid?: string;
            imsi?: string;
            imei?: string;
            msisdn?: string;
            nai?: string;
            supi?: string;
            ip?: string;
            externalId?: string;
            credential?: string;
        };
        TrafficGraph: {
            groupBy: string;
            from: string;
            to: string;
            segments: {
                segment: string;
                devices: number;
            }[];
            edges: {
                /** @description `<label>=<value>`, or `<label>=(none)` for devices without the label */
                segment: string;
                destination: string;
                port: number;
                /** @enum {string} */
                protocol: "tcp" | "udp";
                /** @description connections allowed */
                allowed: number;
                /** @description connections denied */
                denied: number;
                bytes: number;
                /** @description the devices seen on this edge (at most 20) */
                devices: string[];
                lastSeen: string;
                /** @description first seen for this segment within the last hour of the window */
                novel: boolean;
            }[];
            reportsRead: number;
            /** @description more flow reports exist in the window than one map reads */
            truncated: boolean;
        };
        PolicyPreview: {
            /** @description devices the candidate rule's selector matches (the removed rule's, on remove) */
            matchedDevices: number;
            /** @description up to 20 of them */
            sampleDevices: string[];
            flowsEvaluated: number;
            newlyAllowed: {
                deviceId: string;
                destination: string;
                port: number;
                /** @enum {string} */
                protocol: "tcp" | "udp";
                /** @description how many connections of this kind were reported */
                connections: number;
                before: components["schemas"]["Decision"];
                after: components["schemas"]["Decision"];
            }[];
            newlyDenied: {
                deviceId: string;
                destination: string;
                port: number;
                /** @enum {string} */
                protocol: "tcp" | "udp";
                /** @description how many connections of this kind were reported */
                connections: number;
                before: components["schemas"]["Decision"];
                after: components["schemas"]["Decision"];
            }[];
        };
        /**
         * @example {
         *       "allow": false,
         *       "reason": "deny.rule",
         *       "ruleId": "block-roaming",
         *       "explanation": "deny rule \"Block roaming\" (block-roaming) matches"
         *     }
         */
        Decision: {
            allow: boolean;
            /** @enum {string} */
            reason: "allow.rule" | "allow.grant" | "allow.quarantine" | "allow.fail-open" | "deny.default" | "deny.rule" | "deny.revoked" | "deny.suspended" | "deny.quarantined" | "deny.fail-closed";
            ruleId?: string;
            grantId?: string;
            /** @description set on allow.grant: the PEP must record the session */
            sessionRecording?: boolean;
            explanation: string;
        };
        /**
         * @example {
         *       "remove": "meters-telemetry"
         *     }
         */
        PolicyPreviewRequest: {
            /**
             * @description the rule as it would be saved (new, or replacing the one with its id)
             * @example {
             *       "id": "meters-telemetry",
             *       "name": "Meters send telemetry",
             *       "selector": {
             *         "matchLabels": {
             *           "fleet": "meters"
             *         }
             *       },
             *       "destinations": [
             *         {
             *           "fqdn": "ingest.example.com",
             *           "ports": [
             *             8883
             *           ],
             *           "protocol": "tcp"
             *         }
             *       ],
             *       "conditions": {
             *         "bearers": [
             *           "cellular",
             *           "private-5g"
             *         ]
             *       },
             *       "effect": "allow"
             *     }
             */
            upsert?: {
                id: string;
                name: string;
                selector: components["schemas"]["LabelSelector"];
                destinations: components["schemas"]["Destination"][];
                conditions?: components["schemas"]["Conditions"];
                /** @enum {string} */
                effect: "allow" | "deny";
            };
            /** @description the id of the rule to remove */
            remove?: string;
        } & (unknown | unknown);
        SourceHealthPage: {
            items: components["schemas"]["SourceHealth"][];
            /** @description cursor of the next page */
            next?: string;
        };
        /** @description counts since the source first posted */
        SourceHealth: {
            sourceId: string;
            lastRequestAt?: string;
            /** @description the last request with at least one accepted event */
            lastEventAt?: string;
            accepted: number;
            /** @description items refused within accepted requests */
            rejected: number;
            lastRejection?: string;
        };
        /** @description a grant with its revision and current status */
        GrantRecord: {
            id: string;
            /** @description who is granted access: a user, vendor or service id */
            principal: string;
            target: {
                deviceId: string;
            } | {
                selector: components["schemas"]["LabelSelector"];
            };
            destinations: components["schemas"]["Destination"][];
            /** Format: date-time */
            notBefore: string;
            /** Format: date-time */
            notAfter: string;
            sessionRecording: boolean;
            /**
             * Format: date-time
             * @description the grant stops applying at this instant
             */
            revokedAt?: string;
            revokedReason?: string;
            revision: number;
            createdAt: string;
            updatedAt: string;
            /**
             * @description where the grant stands now (computed when read)
             * @enum {string}
             */
            status: "pending" | "active" | "expired" | "revoked";
        };
        /**
         * @example {
         *       "principal": "vendor:acme/jane",
         *       "target": {
         *         "deviceId": "dev_01JD3Q4ZK8W9X2V5N6M7P8R9ST"
         *       },
         *       "destinations": [
         *         {
         *           "cidr": "10.8.0.0/24",
         *           "ports": [
         *             22
         *           ],
         *           "protocol": "tcp"
         *         }
         *       ],
         *       "notBefore": "2025-03-01T08:00:00Z",
         *       "notAfter": "2025-03-01T12:00:00Z",
         *       "sessionRecording": true
         *     }
         */
        GrantInput: {
            /** @description who is granted access: a user, vendor or service id */
            principal: string;
            target: {
                deviceId: string;
            } | {
                selector: components["schemas"]["LabelSelector"];
            };
            destinations: components["schemas"]["Destination"][];
            /** Format: date-time */
            notBefore: string;
            /**
             * Format: date-time
             * @description when the grant ends: after notBefore, and at most 90 days after notBefore or now, whichever is later (JSON Schema cannot compare two fields; the server does)
             */
            notAfter: string;
            /** @description the enforcement point must record sessions under this grant. Default: `false`. */
            sessionRecording?: boolean;
        };
        GrantPage: {
            items: components["schemas"]["GrantRecord"][];
            /** @description cursor of the next page */
            next?: string;
        };
        SourceWithCredentials: {
            source: components["schemas"]["Source"];
            credentials: components["schemas"]["SourceCredentials"];
        };
        Source: {
            /** @example src_01JD3Q4ZK8W9X2V5N6M7P8R9ST */
            id: string;
            tenantId: string;
            name: string;
            /** @enum {string} */
            format: "simroot" | "camara" | "nef" | "datastreamer" | "supersim" | "eim";
            /** @description where the source posts its webhooks */
            ingestPath: string;
            /**
             * @description the bearer a cellular report stands for (private-5g for a private core)
             * @enum {string}
             */
            defaultBearer?: "cellular" | "private-5g" | "wifi" | "satellite";
            /** @description how far into the future (s) a reported time may lie; later ones are ordered at the receive time (default 300) */
            maxClockSkewSeconds?: number;
            createdAt: string;
            credentialsRotatedAt: string;
        };
        /** @description shown once, at creation and rotation */
        SourceCredentials: {
            bearerToken?: string;
            basicUser?: string;
            basicPassword?: string;
            /** @description simroot: the Standard Webhooks secret keying v1 HMAC-SHA256 signatures (generated unless given); none with a public key */
            webhookSecret?: string;
            /** @description simroot: the sender's Ed25519 public key; the source then accepts only v1a signatures it verifies, and holds no secret */
            webhookPublicKey?: string;
            twilioAuthToken?: string;
            /** @description eim: PEM certificates (GSMA CI roots and/or EUM certificates) eUICC notifications must chain to */
            trustAnchors?: string[];
            twilioSharedKeySecret?: string;
        };
        SourcePage: {
            items: components["schemas"]["Source"][];
            /** @description cursor of the next page */
            next?: string;
        };
        SourceDeleted: {
            id: string;
            deletedAt: string;
        };
        SourceRotation: {
            credentials?: components["schemas"]["SourceCredentials"];
        };
        /** @description every accepted event and every rejected item, by index; the same answer for a retry of a simroot webhook-id */
        IngestResult: {
            sourceId: string;
            accepted: {
                index: number;
                id: string;
                type: string;
                /** @description the time the sender stated, beyond the allowed clock skew: ordered at the receive time instead (in UTC when its text is over 64 characters) */
                clampedFrom?: string;
            }[];
            rejected: {
                index: number;
                errors: {
                    path: string;
                    message: string;
                }[];
                /** @description how many of the item's errors are not listed: an answer lists at most 10 an item, cut to length, while it stays within 300 KB */
                unlistedErrors?: number;
            }[];
        };
        /** @description One event object or a JSON array of them, in the source's format: `simroot` NormalizedEvent, `camara` and `supersim` CloudEvents, `nef` 3GPP TS 29.122 MonitoringNotification (reused northbound by the 5G NEF, TS 29.522), `datastreamer` Datastreamer event, `eim` SGP.32 eIM notification. */
        WebhookBody: {
            [key: string]: unknown;
        } | {
            [key: string]: unknown;
        }[];
        CloudEvent: {
            /** @enum {string} */
            specversion: "1.0";
            id: string;
            source: string;
            type: string;
            time?: string;
            datacontenttype?: string;
            data?: unknown;
            /** @description binary data, base64 (instead of `data`) */
            data_base64?: string;
        } & {
            [key: string]: unknown;
        };
        ParkedPage: {
            items: components["schemas"]["ParkedEvent"][];
            /** @description cursor of the next page */
            next?: string;
        };
        ParkedEvent: {
            /** @description the id of the accepted event */
            id: string;
            reason: string;
            parkedAt: string;
            sourceId: string;
            type: string;
            subject: string;
            event: {
                [key: string]: unknown;
            };
            subjects?: string[];
            /** @description when DynamoDB's TTL removes it unless it applied or was replayed first (epoch seconds) */
            expiresAt?: number;
        };
        FeedResponse: {
            signed: components["schemas"]["SignedFeedHead"];
            entries: components["schemas"]["FeedEntry"][];
            next?: string;
        };
        SignedFeedHead: {
            head: components["schemas"]["FeedHead"];
            signature: string;
            keyId: string;
        };
        FeedHead: {
            tenantId: string;
            epoch: number;
            /** @enum {string} */
            kind: "snapshot" | "delta";
            since: number;
            version: number;
            page: number;
            last: boolean;
            cursor?: string;
            next?: string;
            scope?: string;
            contentHash: string;
            issuedAt: string;
            expiresAt: string;
        };
        FeedEntry: {
            version: number;
            /** @enum {string} */
            kind: "device" | "binding" | "policy" | "grant" | "settings";
            key: string;
            value: {
                [key: string]: unknown;
            } | null;
        };
        FeedEpoch: {
            /** @description the epoch every signed head of the tenant now carries */
            epoch: number;
            previous: number;
            advancedAt?: string;
        };
        FlowReport: {
            pepId: string;
            /** Format: date-time */
            windowStart: string;
            /** Format: date-time */
            windowEnd: string;
            flows: {
                deviceId?: string;
                sourceIp?: string | "unknown";
                destination: string;
                port: number;
                /** @enum {string} */
                protocol: "tcp" | "udp";
                /** @enum {string} */
                decision: "allow" | "deny";
                reason: string;
                count: number;
                bytes: number;
            }[];
        };
        AuditPage: {
            items: components["schemas"]["AuditRecord"][];
            /** @description cursor of the next page */
            next?: string;
        };
        AuditRecord: {
            /** @description position in its shard's chain, from 1 */
            seq: number;
            /** @description the ledger shard whose chain holds the record (a device's by its id, tenant-level on 0) */
            shard: number;
            tenantId: string;
            time: string;
            /** @description the event type, e.g. device.registered */
            action: string;
            /** @description key:<id>, source:<id> or system:<component> */
            actor: string;
            requestId: string;
            subject: string;
            eventId: string;
            data: {
                [key: string]: unknown;
            };
            /** @description what enforcement points must learn from this change; the feed sequencer gives it a feed version */
            feed?: {
                kind: string;
                key: string;
                value: {
                    [key: string]: unknown;
                } | null;
                /** @description an IP binding's revision this change wrote */
                rev?: number;
                /** @description a device's labels before this change, on a change that moved them */
                labelsBefore?: {
                    [key: string]: string;
                };
            }[];
            /** @description the IP lease edges of the subject's device this change implies (who held which address when) */
            leases?: {
                address: string;
                at: string;
                /** @enum {string} */
                edge: "start" | "end";
                bearer: string;
            }[];
            /** @description hash of the previous record (64 zeros for the first) */
            prevHash: string;
            /** @description SHA-256 of prevHash and this record's canonical JSON without hash */
            hash: string;
        };
        ChainVerification: {
            valid: boolean;
            /** @description records checked by this walk */
            checked: number;
            /** @description the sequence the walk started after: 0 for the whole chain, else the signed checkpoint's */
            from: number;
            lastSeq: number;
            lastHash: string;
            brokenAt?: {
                seq: number;
                reason: string;
            };
        };
        AutomationRule: {
            id: string;
            name: string;
            pattern: {
                [key: string]: unknown;
            };
            actions: components["schemas"]["AutomationAction"][];
            /**
             * @description record what the actions would do, do nothing
             * @default false
             */
            dryRun?: boolean;
            /** @default true */
            enabled?: boolean;
            /**
             * @description at most `max` firings per `perSeconds` (across every instance); further matches are recorded as rate-limited, at most 10 a window (or `max`, if higher), and counted beyond
             * @default {
             *       "max": 10,
             *       "perSeconds": 60
             *     }
             */
            rateLimit?: {
                max: number;
                perSeconds: number;
            };
            /**
             * @description the role of the key that created or last changed the rule (a change that only disables it or makes it a dry run keeps its role): it fires only on the events that role may read (an operator's matches no `key.*`, `source.*`, `tenant.created` or `feed.epoch-advanced`, nor a record naming one)
             * @enum {string}
             */
            role: "admin" | "operator" | "viewer" | "ingest" | "pep";
            /** @description why the rule does not run: its stored pattern fails a check made since it was written (review 90) */
            problem?: string;
            revision: number;
            createdAt: string;
            updatedAt: string;
        };
        AutomationAction: {
            /** @enum {string} */
            type: "quarantine";
            /** @description recorded with the action; defaults to the rule and the event */
            reason?: string;
        } | {
            /** @enum {string} */
            type: "suspend";
            /** @description recorded with the action; defaults to the rule and the event */
            reason?: string;
        } | {
            /** @enum {string} */
            type: "revoke";
            /** @description recorded with the action; defaults to the rule and the event */
            reason?: string;
        } | {
            /** @enum {string} */
            type: "add-labels";
            /**
             * @description labels that policies select devices by
             * @example {
             *       "fleet": "meters",
             *       "site": "lyon"
             *     }
             */
            labels: {
                [key: string]: string;
            };
        } | {
            /** @enum {string} */
            type: "remove-labels";
            keys: string[];
        } | {
            /** @enum {string} */
            type: "start-grant";
            principal: string;
            destinations: components["schemas"]["Destination"][];
            minutes: number;
        } | {
            /** @enum {string} */
            type: "end-grant";
            /** @description the grant to end; defaults to the grant the event is about */
            grantId?: string;
        } | {
            /** @enum {string} */
            type: "notify";
            /** @description the webhook subscription to deliver the event to */
            webhookId: string;
        } | {
            /** @enum {string} */
            type: "open-incident";
            /**
             * @description Default: `"high"`.
             * @enum {string}
             */
            severity?: "low" | "medium" | "high";
        };
        AutomationRuleInput: {
            name: string;
            /**
             * @description an EventBridge event pattern, matched against the envelope (source, detail-type, detail = the simroot event)
             * @example {
             *       "source": [
             *         "simroot"
             *       ],
             *       "detail-type": [
             *         "anomaly.detected"
             *       ],
             *       "detail": {
             *         "data": {
             *           "kind": [
             *             "new-destination"
             *           ]
             *         }
             *       }
             *     }
             */
            pattern: {
                [key: string]: unknown;
            };
            actions: components["schemas"]["AutomationAction"][];
            /** @description record what the actions would do, do nothing. Default: `false`. */
            dryRun?: boolean;
            /** @description Default: `true`. */
            enabled?: boolean;
            /** @description at most `max` firings per `perSeconds` (across every instance); further matches are recorded as rate-limited, at most 10 a window (or `max`, if higher), and counted beyond. Default: `{"max":10,"perSeconds":60}`. */
            rateLimit?: {
                max: number;
                perSeconds: number;
            };
        };
        AutomationRulePage: {
            items: components["schemas"]["AutomationRule"][];
            /** @description cursor of the next page */
            next?: string;
        };
        WebhookInput: {
            /**
             * Format: uri
             * @description where deliveries are POSTed
             */
            url: string;
            /** @description an EventBridge event pattern over the envelope; an empty `{}` is not allowed (use `{ "source": ["simroot"] }` for everything) */
            pattern: {
                [key: string]: unknown;
            };
            /**
             * @description Standard Webhooks v1 (HMAC-SHA256) or v1a (ed25519). Default: `"v1"`.
             * @enum {string}
             */
            signing?: "v1" | "v1a";
            description?: string;
        };
        WebhookPage: {
            items: components["schemas"]["Webhook"][];
            /** @description cursor of the next page */
            next?: string;
        };
        Webhook: {
            id: string;
            url: string;
            pattern: {
                [key: string]: unknown;
            };
            /** @enum {string} */
            signing: "v1" | "v1a";
            description?: string;
            enabled: boolean;
            disabledReason?: string;
            /** @description v1a: the `whpk_` key receivers verify with */
            publicKey?: string;
            /** @description after a rotation of the signing secret: until when each delivery also carries a signature by the previous one (Standard Webhooks: several signatures in `webhook-signature`), so that receivers move to the new one without a gap */
            previousSecretUntil?: string;
            /** @description v1a, after a rotation: the previous `whpk_` key, valid until `previousSecretUntil` */
            previousPublicKey?: string;
            /** @description why the subscription is sent nothing: its stored pattern fails a check made since it was written (review 90) */
            problem?: string;
            /**
             * @description the role of the key that created or last changed the subscription: it is sent only the events that role may read (an operator's is not sent `key.*`, `source.*`, `tenant.created` or `feed.epoch-advanced`, nor a record naming one)
             * @enum {string}
             */
            role: "admin" | "operator" | "viewer" | "ingest" | "pep";
            revision: number;
            createdAt: string;
            updatedAt: string;
        };
        WebhookDeliveryPage: {
            items: components["schemas"]["WebhookDelivery"][];
            /** @description cursor of the next page */
            next?: string;
        };
        WebhookDelivery: {
            /** @description the `webhook-id` header: the same on every attempt and replay */
            id: string;
            webhookId: string;
            eventId: string;
            eventType: string;
            /** @enum {string} */
            status: "pending" | "delivered" | "failed";
            attemptCount: number;
            nextAt?: string;
            reason?: string;
            attempts: {
                at: string;
                status?: number;
                error?: string;
                ms: number;
            }[];
            createdAt: string;
        };
        Incident: {
            id: string;
            deviceId: string;
            /** @enum {string} */
            status: "open" | "closed";
            /** @enum {string} */
            severity: "low" | "medium" | "high";
            openedAt: string;
            /** @description rule:<id>, key:<id>, ... */
            openedBy: string;
            trigger?: {
                eventId: string;
                type: string;
                time: string;
                data: {
                    [key: string]: unknown;
                };
            };
            summary?: string;
            closedAt?: string;
            revision: number;
        };
        IncidentInput: {
            deviceId: string;
            /**
             * @description Default: `"high"`.
             * @enum {string}
             */
            severity?: "low" | "medium" | "high";
            summary?: string;
        };
        IncidentPage: {
            items: components["schemas"]["Incident"][];
            /** @description cursor of the next page */
            next?: string;
        };
        CloudflarePostureResponse: {
            result: {
                [key: string]: {
                    s2s_id: string;
                    score: number;
                };
            };
        };
        CloudflarePostureRequest: {
            devices: ({
                device_id: string;
                email?: string;
                serial_number?: string;
                mac_address?: string;
                virtual_ipv4?: string;
                hostname?: string;
            } & {
                [key: string]: unknown;
            })[];
        };
        BusDeadLetterPage: {
            items: components["schemas"]["BusDeadLetter"][];
            /** @description cursor of the next page */
            next?: string;
        };
        BusDeadLetter: {
            /** @description `<event id>~<rule>`: one event may fail at several rules */
            id: string;
            /** @description the rule (consumer) that did not take the event; `outbox`: the bus itself refused it, so no rule received it */
            rule: string;
            eventId: string;
            eventType: string;
            subject: string;
            reason: string;
            attempts?: number;
            /** @description where the audit trail keeps the change whose event the bus refused or held (`outbox` letters: `GET /v1/audit?shard=`); a refused one cannot be redriven */
            record?: {
                shard: number;
                seq: number;
            };
            /** @description `outbox` letters: the bus did not take the event for 12 hours after its commit (down, throttling, a permission missing), so the outbox went on without it before the stream dropped it; a redrive publishes it from the audit trail, with its own id */
            held?: boolean;
            deadAt: string;
            /** @description when it is dropped unless redriven first (epoch seconds) */
            expiresAt: number;
        };
    };
    responses: never;
    parameters: {
        /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
        IdempotencyKey: string;
    };
    requestBodies: never;
    headers: {
        /** @description The request's id: the caller's X-Request-Id when sane, else a new one */
        RequestId: string;
        /** @description The strong entity tag of the representation: send it back in If-Match */
        ETag: string;
        /** @description The created resource */
        Location: string;
        /** @description `true` when this is the kept response of an earlier request with the same Idempotency-Key */
        IdempotentReplayed: "true";
        /** @description The signed feed head (base64 JSON), also on 304 */
        FeedHead: string;
        /** @description The rate limits that count the request (draft-ietf-httpapi-ratelimit-headers), the credential's then its tenant's credentials of its kind together (`tenantRateLimits` of `GET /v1/tenant`): `"default";q=<requests>;w=<seconds>, "tenant";q=<requests>;w=<seconds>` */
        RateLimitPolicy: string;
        /** @description What is left of each: `"default";r=<remaining>;t=<seconds until the window resets>, "tenant";r=<remaining>;t=<seconds>` */
        RateLimit: string;
        /** @description Seconds to wait before asking again */
        RetryAfter: number;
    };
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    listHealth: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Every component answers */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
            /** @description A component is down */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Health"];
                };
            };
        };
    };
    listDevicesLookup: {
        parameters: {
            query?: {
                deviceId?: string;
                eid?: string;
                iccid?: string;
                imsi?: string;
                imei?: string;
                msisdn?: string;
                nai?: string;
                supi?: string;
                ip?: string;
                externalId?: string;
                credential?: string;
                /** @description with ip: who held it then */
                at?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The device */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Device"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, (ingestion) the applier's backlog is past its bound, or past half of it and the tenant's events of the last minute would pass a quarter of it (`ingest.backlogged`), or (devices) a deploy is under way and the device is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listDevices: {
        parameters: {
            query?: {
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of devices */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["DevicePage"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, (ingestion) the applier's backlog is past its bound, or past half of it and the tenant's events of the last minute would pass a quarter of it (`ingest.backlogged`), or (devices) a deploy is under way and the device is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createDevices: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    name?: string;
                    /**
                     * @description eUICC identifier (32 digits, GSMA SGP.29) whose check digits hold: the number mod 97 is 1 (ISO 7064 MOD 97-10)
                     * @example 89049032123451234512345678901235
                     */
                    eid?: string;
                    iccids?: string[];
                    /**
                     * @description subscriber identity of a profile (3GPP TS 23.003)
                     * @example 234100000000001
                     */
                    imsi?: string;
                    /**
                     * @description equipment identity of the modem; its 15th digit is the Luhn check digit
                     * @example 490154203237518
                     */
                    imei?: string;
                    /**
                     * @description phone number in E.164 form (the leading + may be left out)
                     * @example +447700900123
                     */
                    msisdn?: string;
                    /**
                     * @description the GPSI external identifier a 3GPP NEF reports the device by (local@domain)
                     * @example meter-4@iot.example.com
                     */
                    externalId?: string;
                    /**
                     * @description labels that policies select devices by
                     * @example {
                     *       "fleet": "meters",
                     *       "site": "lyon"
                     *     }
                     */
                    labels?: {
                        [key: string]: string;
                    };
                    /** @description quarantine the device when its IMEI changes; defaults to the tenant setting */
                    imeiLock?: boolean;
                    /** @description countries this device may roam into; defaults to the tenant's country rules, then its allowedCountries */
                    allowedCountries?: string[];
                    /** @description the IoT SAFE credential: its X.509 client certificate or public key, PEM; only its SPKI SHA-256 fingerprint is kept */
                    credential?: string;
                } | unknown | unknown | {
                    iccids: unknown;
                };
            };
        };
        responses: {
            /** @description The registered device */
            201: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    Location: components["headers"]["Location"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Device"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getDevicesById: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The device */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Device"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, (ingestion) the applier's backlog is past its bound, or past half of it and the tenant's events of the last minute would pass a quarter of it (`ingest.backlogged`), or (devices) a deploy is under way and the device is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    updateDevicesById: {
        parameters: {
            query?: never;
            header: {
                /** @description The ETag you read (strong comparison, a weak `W/"3"` never matches), a list of them, or `*`. Absent: 428. */
                "if-match": string;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    name?: string;
                    /**
                     * @description labels that policies select devices by
                     * @example {
                     *       "fleet": "meters",
                     *       "site": "lyon"
                     *     }
                     */
                    labels?: {
                        [key: string]: string;
                    };
                    imeiLock?: boolean;
                    /** @description null: back to the tenant's rules */
                    allowedCountries?: string[] | null;
                };
            };
        };
        responses: {
            /** @description The updated device. A change naming only the values the resource holds answers it as it is: the same ETag, no new revision, no event, nothing audited */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Device"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description `If-Match` does not match the current ETag */
            412: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Error */
            428: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, (ingestion) the applier's backlog is past its bound, or past half of it and the tenant's events of the last minute would pass a quarter of it (`ingest.backlogged`), or (devices) a deploy is under way and the device is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listDevicesByIdTimeline: {
        parameters: {
            query?: {
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of timeline entries */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TimelinePage"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, (ingestion) the applier's backlog is past its bound, or past half of it and the tenant's events of the last minute would pass a quarter of it (`ingest.backlogged`), or (devices) a deploy is under way and the device is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createDevicesByIdByAction: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path: {
                id: string;
                action: "suspend" | "quarantine" | "reinstate" | "revoke";
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["DeviceActionInput"];
            };
        };
        responses: {
            /** @description The device after the action */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        /** @enum {string} */
                        outcome: "applied" | "duplicate" | "stale";
                        device: components["schemas"]["Device"];
                    };
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, (ingestion) the applier's backlog is past its bound, or past half of it and the tenant's events of the last minute would pass a quarter of it (`ingest.backlogged`), or (devices) a deploy is under way and the device is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listDevicesByIdSessions: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Active sessions */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        items: components["schemas"]["Session"][];
                    };
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, (ingestion) the applier's backlog is past its bound, or past half of it and the tenant's events of the last minute would pass a quarter of it (`ingest.backlogged`), or (devices) a deploy is under way and the device is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listDevicesByIdProfiles: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description eUICC profiles */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        items: components["schemas"]["Profile"][];
                    };
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, (ingestion) the applier's backlog is past its bound, or past half of it and the tenant's events of the last minute would pass a quarter of it (`ingest.backlogged`), or (devices) a deploy is under way and the device is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listKeys: {
        parameters: {
            query?: {
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of keys */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ApiKeyPage"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createKeys: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    name: string;
                    /** @enum {string} */
                    role: "admin" | "operator" | "viewer" | "pep";
                    /** @description pep keys only: bind the key to a site or segment, `key=value[,key=value]` (values URI-encoded) as the feed's `selector`. The key then reads only that selector's view of the feed (or a narrower selector's), and is refused (403 feed.selector_not_bound) any other; without it, a pep key reads the whole tenant's feed */
                    selector?: string;
                };
            };
        };
        responses: {
            /** @description The key and its token */
            201: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ApiKeyWithToken"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createKeysByIdRotate: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The key and its new token */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ApiKeyWithToken"];
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A body was sent labelled other than JSON (this operation takes none: send no Content-Type, or `application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    removeKeysById: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The revoked key */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ApiKey"];
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A body was sent labelled other than JSON (this operation takes none: send no Content-Type, or `application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listTenant: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The tenant */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Tenant"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    updateTenantSettings: {
        parameters: {
            query?: never;
            header: {
                /** @description The ETag you read (strong comparison, a weak `W/"3"` never matches), a list of them, or `*`. Absent: 428. */
                "if-match": string;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    /** @description quarantine a device when its IMEI changes (devices may override) */
                    imeiLock?: boolean;
                    /** @description countries devices may roam into; empty means anywhere */
                    allowedCountries?: string[];
                    /** @description allowed countries for the devices a label selector matches (the first matching rule wins; a device's own list wins over all) */
                    countryRules?: {
                        selector: components["schemas"]["LabelSelector"];
                        allowedCountries: string[];
                    }[];
                    /**
                     * @description what enforcement points do when they cannot decide (the enforcement settings' fail mode)
                     * @enum {string}
                     */
                    failMode?: "closed" | "open";
                    rateLimits?: {
                        /** @description requests per minute each API key of the tenant may make; past it, 429 with Retry-After until the minute ends. At most the deployment's ceiling (400 tenant_settings.rate_limit_above_ceiling above it) */
                        apiKeyPerMinute?: number;
                        /** @description requests per minute each enforcement point key may make; past it, 429 with Retry-After until the minute ends. At most the deployment's ceiling (400 tenant_settings.rate_limit_above_ceiling above it) */
                        pepKeyPerMinute?: number;
                        /** @description requests per minute each ingestion source of the tenant may make; past it, 429 with Retry-After until the minute ends. At most the deployment's ceiling (400 tenant_settings.rate_limit_above_ceiling above it) */
                        sourcePerMinute?: number;
                    };
                };
            };
        };
        responses: {
            /** @description The tenant. A change naming only the values the resource holds answers it as it is: the same ETag, no new revision, no event, nothing audited */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Tenant"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description `If-Match` does not match the current ETag */
            412: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Error */
            428: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createTenants: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    name: string;
                };
            };
        };
        responses: {
            /** @description The tenant and its admin key token (shown once) */
            201: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        tenant: components["schemas"]["Tenant"];
                        token: string;
                        keyId: string;
                    };
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listPolicies: {
        parameters: {
            query?: {
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of rules */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["PolicyPage"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createPolicies: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["PolicyInput"];
            };
        };
        responses: {
            /** @description The rule */
            201: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    Location: components["headers"]["Location"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Policy"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getPoliciesById: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The rule */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Policy"];
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    replacePoliciesById: {
        parameters: {
            query?: never;
            header: {
                /** @description The ETag you read (strong comparison, a weak `W/"3"` never matches), a list of them, or `*`. Absent: 428. */
                "if-match": string;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["PolicyInput"];
            };
        };
        responses: {
            /** @description The rule */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Policy"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description `If-Match` does not match the current ETag */
            412: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Error */
            428: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    removePoliciesById: {
        parameters: {
            query?: never;
            header: {
                /** @description The ETag you read (strong comparison, a weak `W/"3"` never matches), a list of them, or `*`. Absent: 428. */
                "if-match": string;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Deleted */
            204: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description `If-Match` does not match the current ETag */
            412: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A body was sent labelled other than JSON (this operation takes none: send no Content-Type, or `application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Error */
            428: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listEnforcement: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The settings */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Enforcement"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    replaceEnforcement: {
        parameters: {
            query?: never;
            header: {
                /** @description The ETag you read (strong comparison, a weak `W/"3"` never matches), a list of them, or `*`. Absent: 428. */
                "if-match": string;
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["EnforcementSettings"];
            };
        };
        responses: {
            /** @description The settings */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Enforcement"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description `If-Match` does not match the current ETag */
            412: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Error */
            428: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createDecisionsEvaluate: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["WhatIfRequest"];
            };
        };
        responses: {
            /** @description The decision */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WhatIfDecision"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listTraffic: {
        parameters: {
            query?: {
                /** @description how far back to look */
                hours?: number;
                /** @description the label whose values are the segments */
                groupBy?: string;
                /** @description only this device's flows */
                device?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The map */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TrafficGraph"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createPoliciesPreview: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["PolicyPreviewRequest"];
            };
        };
        responses: {
            /** @description What would change */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["PolicyPreview"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listSourceHealth: {
        parameters: {
            query?: {
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of sources, by source id */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SourceHealthPage"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listGrants: {
        parameters: {
            query?: {
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of grants */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["GrantPage"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createGrants: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["GrantInput"];
            };
        };
        responses: {
            /** @description The grant */
            201: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    Location: components["headers"]["Location"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["GrantRecord"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getGrantsById: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The grant */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["GrantRecord"];
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createGrantsByIdRevoke: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: {
            content: {
                "application/json": {
                    reason?: string;
                };
            };
        };
        responses: {
            /** @description The revoked grant */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["GrantRecord"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listSources: {
        parameters: {
            query?: {
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of sources */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SourcePage"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createSources: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    name: string;
                    /** @enum {string} */
                    format: "simroot" | "camara" | "nef" | "datastreamer" | "supersim" | "eim";
                    credentials?: components["schemas"]["SourceCredentials"];
                    /**
                     * @description how the device reaches the network: public cellular, private LTE/5G, Wi-Fi via EAP-SIM/AKA, satellite NTN
                     * @enum {string}
                     */
                    defaultBearer?: "cellular" | "private-5g" | "wifi" | "satellite";
                    maxClockSkewSeconds?: number;
                };
            };
        };
        responses: {
            /** @description The source and its credentials */
            201: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    Location: components["headers"]["Location"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SourceWithCredentials"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getSourcesById: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The source */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Source"];
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    removeSourcesById: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Deleted */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SourceDeleted"];
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A body was sent labelled other than JSON (this operation takes none: send no Content-Type, or `application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createSourcesByIdRotate: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: {
            content: {
                "application/json": components["schemas"]["SourceRotation"];
            };
        };
        responses: {
            /** @description The source and its new credentials */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SourceWithCredentials"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createIngestBySourceId: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                sourceId: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["WebhookBody"];
                "application/cloudevents+json": components["schemas"]["CloudEvent"];
                "application/cloudevents-batch+json": components["schemas"]["CloudEvent"][];
            };
        };
        responses: {
            /** @description Accepted and durably queued */
            202: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["IngestResult"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid source credentials (the signature, token or password the source was given), or no source has this id: one answer, `ingest.unauthenticated`, whichever it is and whatever the format, so source ids cannot be told apart from ids of no source (the reason is logged with the request id) */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is too large, or (ingestion) it reports more than 250 facts or 200 KB of one device (`ingest.too_many_for_device`, naming the device): nothing of it was recorded; split it and send again */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not labelled with a media type of the source's format (checked once the request is authenticated): `application/json`, and for `camara` and `supersim` also `application/cloudevents+json` and `application/cloudevents-batch+json`. An unlabelled body is refused too; `Accept-Post` lists the types the source takes. */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    /** @description the media types the source's format takes */
                    "Accept-Post": string;
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, (ingestion) the applier's backlog is past its bound, or past half of it and the tenant's events of the last minute would pass a quarter of it (`ingest.backlogged`), or (devices) a deploy is under way and the device is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listDeadLetters: {
        parameters: {
            query?: {
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of parked events */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ParkedPage"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createDeadLettersByIdReplay: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Queued again */
            202: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        id: string;
                        replayed: boolean;
                    };
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A body was sent labelled other than JSON (this operation takes none: send no Content-Type, or `application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listFeed: {
        parameters: {
            query?: {
                /** @description the version the PEP holds; omit for a snapshot */
                since?: number | null;
                /** @description the next snapshot page */
                cursor?: string;
                /** @description long poll: seconds to wait for a change (deltas only), at most 20 so the answer comes inside the gateway's 30 s */
                wait?: number | null;
                limit?: number;
                /** @description narrow the feed to a site or segment: the devices whose labels match `key=value[,key=value]` (values URI-encoded), and their bindings. A pep key bound to a selector (POST /v1/keys) is served its selector's view without one, and may ask only for that selector or a narrower one (403 feed.selector_not_bound otherwise) */
                selector?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A snapshot page or the deltas (or, streamed, a sequence of them) */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["FeedResponse"];
                    "text/event-stream": string;
                };
            };
            /** @description Nothing changed since your version; the re-signed head is in the simroot-feed-head header */
            304: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    ETag: components["headers"]["ETag"];
                    "simroot-feed-head": components["headers"]["FeedHead"];
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Take a snapshot */
            410: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": unknown;
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listFeedKeys: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The keys */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        keys: {
                            keyId: string;
                            /** @enum {string} */
                            algorithm: "ed25519";
                            publicKeyPem: string;
                        }[];
                    };
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createFeedEpoch: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    reason: string;
                };
            };
        };
        responses: {
            /** @description The new epoch */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["FeedEpoch"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description `If-Match` does not match the current ETag */
            412: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createFlows: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["FlowReport"];
            };
        };
        responses: {
            /** @description Stored and judged: `flows` counts the flows kept, `anomalies` the anomaly.detected events the report caused. A flow naming a device the tenant does not have is not kept; `unknownDevices` lists those ids (a report that keeps no flow stores nothing). A pep key bound to a selector (POST /v1/keys) reports only on that selector's devices: a device out of it is answered and left out exactly as an unknown one, and a flow known only by an address of such a device is kept as an address of no device (no baseline, no anomaly). 400 for a source that is neither an address nor `unknown`, or a window ending more than 300 s after the control plane's clock */
            202: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        id: string;
                        flows: number;
                        unknownDevices: string[];
                        anomalies: number;
                    };
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listAuditExport: {
        parameters: {
            query?: {
                /** @description only records about this subject (a device id) */
                subject?: string;
                /** @description only records at or after this time. Without `subject`, the chains are read in order and filtered: a page reads at most 10 records per record it may hold (1,000 at least), so it may come back short or empty with a `next` cursor; follow it, or name a `subject` for a walk by time */
                from?: string;
                /** @description only records before this time (as `from` reads) */
                to?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description One audit record per line, in chain order */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/x-ndjson": string;
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listAudit: {
        parameters: {
            query?: {
                /** @description only records about this subject (a device id) */
                subject?: string;
                /** @description only this ledger shard's chain (by sequence) */
                shard?: number | null;
                /** @description only records at or after this time. Without `subject`, the chains are read in order and filtered: a page reads at most 10 records per record it may hold (1,000 at least), so it may come back short or empty with a `next` cursor; follow it, or name a `subject` for a walk by time */
                from?: string;
                /** @description only records before this time (as `from` reads) */
                to?: string;
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of audit records */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AuditPage"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listAuditVerify: {
        parameters: {
            query?: {
                /** @description walk the whole chain from its first record (admin keys only) */
                full?: "true" | "false";
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The verification */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ChainVerification"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createAuditCheckpoint: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The verification (the checkpoint is at `lastSeq` when it is valid) */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ChainVerification"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A body was sent labelled other than JSON (this operation takes none: send no Content-Type, or `application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listLive: {
        parameters: {
            query?: {
                /** @description resume after this version (default: now) */
                since?: number | null;
                /** @description seconds before the stream ends (reconnect then), at most 20 so it ends inside the gateway's 30 s. Behind a gateway that buffers responses (API Gateway in AWS), the stream ends after its first change instead: reconnect with Last-Event-ID */
                wait?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description An event stream */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "text/event-stream": string;
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listAutomationRules: {
        parameters: {
            query?: {
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of rules */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AutomationRulePage"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createAutomationRules: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["AutomationRuleInput"];
            };
        };
        responses: {
            /** @description The rule */
            201: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    Location: components["headers"]["Location"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AutomationRule"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getAutomationRulesById: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The rule */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AutomationRule"];
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    removeAutomationRulesById: {
        parameters: {
            query?: never;
            header: {
                /** @description The ETag you read (strong comparison, a weak `W/"3"` never matches), a list of them, or `*`. Absent: 428. */
                "if-match": string;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Removed */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        id: string;
                    };
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description `If-Match` does not match the current ETag */
            412: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A body was sent labelled other than JSON (this operation takes none: send no Content-Type, or `application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Error */
            428: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    updateAutomationRulesById: {
        parameters: {
            query?: never;
            header: {
                /** @description The ETag you read (strong comparison, a weak `W/"3"` never matches), a list of them, or `*`. Absent: 428. */
                "if-match": string;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    name?: string;
                    /**
                     * @description an EventBridge event pattern, matched against the envelope (source, detail-type, detail = the simroot event)
                     * @example {
                     *       "source": [
                     *         "simroot"
                     *       ],
                     *       "detail-type": [
                     *         "anomaly.detected"
                     *       ],
                     *       "detail": {
                     *         "data": {
                     *           "kind": [
                     *             "new-destination"
                     *           ]
                     *         }
                     *       }
                     *     }
                     */
                    pattern?: {
                        [key: string]: unknown;
                    };
                    actions?: components["schemas"]["AutomationAction"][];
                    /** @description record what the actions would do, do nothing */
                    dryRun?: boolean;
                    enabled?: boolean;
                    /** @description at most `max` firings per `perSeconds` (across every instance); further matches are recorded as rate-limited, at most 10 a window (or `max`, if higher), and counted beyond */
                    rateLimit?: {
                        max: number;
                        perSeconds: number;
                    };
                };
            };
        };
        responses: {
            /** @description The rule. A change naming only the values the resource holds answers it as it is: the same ETag, no new revision, no event, nothing audited */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AutomationRule"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description `If-Match` does not match the current ETag */
            412: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Error */
            428: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listWebhooks: {
        parameters: {
            query?: {
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of subscriptions */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookPage"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createWebhooks: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["WebhookInput"];
            };
        };
        responses: {
            /** @description The subscription (with `secret` for v1) */
            201: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    Location: components["headers"]["Location"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        id: string;
                        url: string;
                        pattern: {
                            [key: string]: unknown;
                        };
                        /** @enum {string} */
                        signing: "v1" | "v1a";
                        description?: string;
                        enabled: boolean;
                        disabledReason?: string;
                        /** @description v1a: the `whpk_` key receivers verify with */
                        publicKey?: string;
                        /** @description after a rotation of the signing secret: until when each delivery also carries a signature by the previous one (Standard Webhooks: several signatures in `webhook-signature`), so that receivers move to the new one without a gap */
                        previousSecretUntil?: string;
                        /** @description v1a, after a rotation: the previous `whpk_` key, valid until `previousSecretUntil` */
                        previousPublicKey?: string;
                        /** @description why the subscription is sent nothing: its stored pattern fails a check made since it was written (review 90) */
                        problem?: string;
                        /**
                         * @description the role of the key that created or last changed the subscription: it is sent only the events that role may read (an operator's is not sent `key.*`, `source.*`, `tenant.created` or `feed.epoch-advanced`, nor a record naming one)
                         * @enum {string}
                         */
                        role: "admin" | "operator" | "viewer" | "ingest" | "pep";
                        revision: number;
                        createdAt: string;
                        updatedAt: string;
                        secret?: string;
                    };
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getWebhooksById: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The subscription */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Webhook"];
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    removeWebhooksById: {
        parameters: {
            query?: never;
            header: {
                /** @description The ETag you read (strong comparison, a weak `W/"3"` never matches), a list of them, or `*`. Absent: 428. */
                "if-match": string;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Removed */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        id: string;
                    };
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description `If-Match` does not match the current ETag */
            412: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A body was sent labelled other than JSON (this operation takes none: send no Content-Type, or `application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Error */
            428: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    updateWebhooksById: {
        parameters: {
            query?: never;
            header: {
                /** @description The ETag you read (strong comparison, a weak `W/"3"` never matches), a list of them, or `*`. Absent: 428. */
                "if-match": string;
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    /**
                     * Format: uri
                     * @description where deliveries are POSTed
                     */
                    url?: string;
                    pattern?: {
                        [key: string]: unknown;
                    };
                    description?: string;
                    enabled?: boolean;
                };
            };
        };
        responses: {
            /** @description The subscription. A change naming only the values the resource holds answers it as it is: the same ETag, no new revision, no event, nothing audited */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Webhook"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description `If-Match` does not match the current ETag */
            412: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Error */
            428: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createWebhooksByIdRotateSecret: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The subscription (with the new `secret` for v1) */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    ETag: components["headers"]["ETag"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        id: string;
                        url: string;
                        pattern: {
                            [key: string]: unknown;
                        };
                        /** @enum {string} */
                        signing: "v1" | "v1a";
                        description?: string;
                        enabled: boolean;
                        disabledReason?: string;
                        /** @description v1a: the `whpk_` key receivers verify with */
                        publicKey?: string;
                        /** @description after a rotation of the signing secret: until when each delivery also carries a signature by the previous one (Standard Webhooks: several signatures in `webhook-signature`), so that receivers move to the new one without a gap */
                        previousSecretUntil?: string;
                        /** @description v1a, after a rotation: the previous `whpk_` key, valid until `previousSecretUntil` */
                        previousPublicKey?: string;
                        /** @description why the subscription is sent nothing: its stored pattern fails a check made since it was written (review 90) */
                        problem?: string;
                        /**
                         * @description the role of the key that created or last changed the subscription: it is sent only the events that role may read (an operator's is not sent `key.*`, `source.*`, `tenant.created` or `feed.epoch-advanced`, nor a record naming one)
                         * @enum {string}
                         */
                        role: "admin" | "operator" | "viewer" | "ingest" | "pep";
                        revision: number;
                        createdAt: string;
                        updatedAt: string;
                        secret?: string;
                    };
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A body was sent labelled other than JSON (this operation takes none: send no Content-Type, or `application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listWebhooksByIdDeliveries: {
        parameters: {
            query?: {
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of deliveries */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookDeliveryPage"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createWebhooksByIdDeliveriesByDeliveryIdReplay: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path: {
                id: string;
                deliveryId: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The delivery, due again */
            202: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["WebhookDelivery"];
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A body was sent labelled other than JSON (this operation takes none: send no Content-Type, or `application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listIncidents: {
        parameters: {
            query?: {
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of incidents */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["IncidentPage"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createIncidents: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["IncidentInput"];
            };
        };
        responses: {
            /** @description The incident */
            201: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    Location: components["headers"]["Location"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Incident"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    getIncidentsById: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The incident and its evidence */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        incident: components["schemas"]["Incident"];
                        timeline: {
                            seq: number;
                            time: string;
                            type: string;
                            actor: string;
                            data: {
                                [key: string]: unknown;
                            };
                        }[];
                        anomalies: {
                            seq: number;
                            time: string;
                            type: string;
                            actor: string;
                            data: {
                                [key: string]: unknown;
                            };
                        }[];
                        actions: {
                            seq: number;
                            time: string;
                            type: string;
                            actor: string;
                            data: {
                                [key: string]: unknown;
                            };
                        }[];
                        /** @description records of the incident's own span left out of the timeline: past 10,000 of sessions and sightings, the newest 2,000 are kept; the incident's own records, anomalies, rules' firings and measures are, within the first 40,000 records of the span (past them only the close is read, and at least 1 is counted) */
                        omitted: number;
                    };
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listIncidentsByIdNis2: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description The drafts */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        [key: string]: unknown;
                    };
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createIncidentsByIdClose: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": {
                    summary: string;
                };
            };
        };
        responses: {
            /** @description The closed incident */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["Incident"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createIntegrationsCloudflarePosture: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CloudflarePostureRequest"];
            };
        };
        responses: {
            /** @description The score of each device, by WARP device id */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CloudflarePostureResponse"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is larger than 1 MiB */
            413: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The body is not JSON (`Content-Type: application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listOcsfEvents: {
        parameters: {
            query?: {
                /** @description audit records (changes, findings, incidents) or PEP flow reports */
                kind?: "audit" | "flows";
                from?: string;
                to?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description One OCSF event per line */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/x-ndjson": string;
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    listBusDeadLetters: {
        parameters: {
            query?: {
                limit?: number;
                cursor?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description A page of dead letters */
            200: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["BusDeadLetterPage"];
                };
            };
            /** @description Invalid input: `errors` names each bad field */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, or a deploy is under way and what this reads is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
    createBusDeadLettersByIdRedrive: {
        parameters: {
            query?: never;
            header?: {
                /** @description Makes the POST safe to retry: the first request with a key acts, a retry with the same key and body gets the first response again (`Idempotent-Replayed: true`) for 24 hours, a concurrent one 409, one with another body 422. Keys are scoped to the API key; a request that never completed frees its key after 180 seconds. */
                "Idempotency-Key"?: components["parameters"]["IdempotencyKey"];
            };
            path: {
                id: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description Handed back */
            202: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Idempotent-Replayed": components["headers"]["IdempotentReplayed"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/json": {
                        id: string;
                        rule: string;
                        redriven: boolean;
                    };
                };
            };
            /** @description Invalid input: `errors` names each bad field (a path parameter that is no id of its kind) */
            400: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Missing or invalid API key */
            401: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The key's role may not do this */
            403: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description No such resource in this tenant */
            404: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description Conflicts with the current state; or a request with this Idempotency-Key is still in progress */
            409: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A body was sent labelled other than JSON (this operation takes none: send no Content-Type, or `application/json`) */
            415: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description This Idempotency-Key was used with another request */
            422: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description The credential (API key or source) used its rate limit, or its tenant's credentials of its kind used theirs together (the policy `RateLimit` leaves at `r=0`: `"default"` or `"tenant"`): retry after Retry-After seconds */
            429: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
            /** @description A dependency is down, (ingestion) the applier's backlog is past its bound, or past half of it and the tenant's events of the last minute would pass a quarter of it (`ingest.backlogged`), or (devices) a deploy is under way and the device is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds */
            503: {
                headers: {
                    "X-Request-Id": components["headers"]["RequestId"];
                    "Retry-After": components["headers"]["RetryAfter"];
                    RateLimit: components["headers"]["RateLimit"];
                    "RateLimit-Policy": components["headers"]["RateLimitPolicy"];
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["Problem"];
                };
            };
        };
    };
}
