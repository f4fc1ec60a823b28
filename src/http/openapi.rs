//! The OpenAPI 3.0 document served at `/api/v1/openapi.json`. Tests check real responses
//! against its schemas, so it cannot drift from what the server answers.

use serde_json::{Value, json};

fn nullable(t: &str) -> Value {
    json!({ "type": t, "nullable": true })
}

fn schemas() -> Value {
    json!({
        "TargetStatus": {
            "type": "object",
            "required": ["name", "group", "kind", "state", "consecutive_failures", "downtime_seconds", "flaps", "interval_seconds"],
            "properties": {
                "name": { "type": "string" }, "group": { "type": "string" }, "kind": { "type": "string" },
                "description": nullable("string"),
                "state": { "type": "string", "enum": ["unknown", "up", "down"] },
                "since": nullable("string"), "last_probe": nullable("string"), "last_ok": nullable("boolean"),
                "last_duration_seconds": nullable("number"), "last_failure": nullable("string"),
                "last_failure_reason": nullable("string"), "consecutive_failures": { "type": "integer" },
                "downtime_seconds": { "type": "number" }, "flaps": { "type": "integer" },
                "interval_seconds": { "type": "number" }, "packet_loss_ratio": nullable("number"),
                "rtt_seconds": nullable("number"),
                "degraded_since": nullable("string"),
                "monitor_fault": nullable("string"), "monitor_fault_since": nullable("string")
            }
        },
        "Status": {
            "type": "object",
            "required": ["vantage", "version", "generated_at", "up", "down", "unknown", "targets"],
            "properties": {
                "vantage": { "type": "string" }, "version": { "type": "string" }, "generated_at": { "type": "string" },
                "up": { "type": "integer" }, "down": { "type": "integer" }, "unknown": { "type": "integer" },
                "targets": { "type": "array", "items": { "$ref": "#/components/schemas/TargetStatus" } }
            }
        },
        "Figures": {
            "type": "object",
            "required": ["window_ms", "observed_ms", "coverage", "downtime_ms", "outages", "longest_outage_ms", "degraded_ms", "objective", "breach", "outage_rows"],
            "properties": {
                "window_ms": { "type": "integer" }, "observed_ms": { "type": "integer" }, "coverage": { "type": "number" },
                "downtime_ms": { "type": "integer" }, "availability": nullable("number"), "outages": { "type": "integer" },
                "longest_outage_ms": { "type": "integer" }, "mttr_ms": nullable("integer"), "degraded_ms": { "type": "integer" },
                "degradations": { "type": "integer" },
                "objective": { "type": "number" }, "breach": { "type": "boolean" },
                "breach_reasons": { "type": "array", "items": { "type": "string" } },
                "error_budget_remaining": nullable("number"), "burn_rate": nullable("number"),
                "outage_rows": { "type": "array", "items": {
                    "type": "object", "required": ["start", "counted_ms", "observed_ms", "unobserved_ms"],
                    "properties": { "start": { "type": "integer" }, "end": nullable("integer"), "counted_ms": { "type": "integer" }, "observed_ms": { "type": "integer" }, "unobserved_ms": { "type": "integer" }, "reason": nullable("string") }
                } }
            }
        },
        "Incident": {
            "type": "object",
            "required": ["id", "group", "target", "kind", "since_ms", "opened_ms", "silenced"],
            "properties": {
                "id": { "type": "integer" }, "group": { "type": "string" }, "target": { "type": "string" },
                "kind": { "type": "string", "enum": ["outage", "degraded"] }, "since_ms": { "type": "integer" },
                "opened_ms": { "type": "integer" }, "closed_ms": nullable("integer"), "reason": nullable("string"),
                "detail": nullable("string"), "acked_ms": nullable("integer"), "acked_by": nullable("string"),
                "notified_ms": nullable("integer"), "escalated_ms": nullable("integer"), "silenced": { "type": "boolean" }
            }
        },
        "Period": {
            "type": "object",
            "required": ["name", "start", "end", "active"],
            "properties": {
                "name": { "type": "string" }, "start": { "type": "string" }, "end": { "type": "string" },
                "active": { "type": "boolean" }, "seconds_left": nullable("integer"), "interval_seconds": nullable("number"),
                "objective": nullable("number"), "description": nullable("string")
            }
        },
        "Report": {
            "type": "object",
            "required": ["window_name", "from", "to", "generated_at", "vantage", "timezone", "observed", "groups", "total"],
            "properties": {
                "window_name": { "type": "string" }, "from": { "type": "string" }, "to": { "type": "string" },
                "generated_at": { "type": "string" }, "vantage": { "type": "string" }, "timezone": { "type": "string" },
                "observed": { "type": "array", "items": { "type": "object", "required": ["start", "end"],
                    "properties": { "start": { "type": "integer" }, "end": { "type": "integer" } } } },
                "groups": { "type": "array", "items": {
                    "type": "object", "required": ["name", "kind", "figures", "targets"],
                    "properties": {
                        "name": { "type": "string" }, "display_name": nullable("string"), "kind": { "type": "string" },
                        "contingency": nullable("string"), "figures": { "$ref": "#/components/schemas/Figures" },
                        "targets": { "type": "array", "items": {
                            "type": "object", "required": ["name", "group", "kind", "in_config", "figures"],
                            "properties": {
                                "name": { "type": "string" }, "group": { "type": "string" }, "kind": { "type": "string" },
                                "description": nullable("string"), "in_config": { "type": "boolean" },
                                "degradations": { "type": "array", "items": { "type": "object", "required": ["start"],
                                    "properties": { "start": { "type": "integer" }, "end": nullable("integer"), "reason": nullable("string") } } },
                                "figures": { "$ref": "#/components/schemas/Figures" }
                            }
                        } }
                    }
                } },
                "total": { "$ref": "#/components/schemas/Figures" },
                "kpis": { "type": "array", "description": "Test calls and messages: success ratio and times per target.",
                    "items": { "type": "object", "required": ["target", "kind", "attempts", "successes"] } },
                "maintenance": { "type": "array", "description": "Maintenance windows overlapping the window.",
                    "items": { "type": "object", "required": ["start", "end", "count_in_sla", "groups", "targets"],
                        "properties": { "name": nullable("string"), "start": { "type": "string" }, "end": { "type": "string" },
                            "count_in_sla": { "type": "boolean" },
                            "groups": { "type": "array", "items": { "type": "string" } },
                            "targets": { "type": "array", "items": { "type": "string" } } } } },
                "ledger": { "type": "object", "nullable": true, "required": ["seq", "hash"],
                    "description": "The newest entry of the tamper-evident ledger the report was built from.",
                    "properties": { "seq": { "type": "integer" }, "hash": { "type": "string" } } },
                "postal": { "type": "object", "nullable": true, "required": ["operators", "by_kind", "breaches"],
                    "description": "With a [postal] section: consignments per operator and kind, and the breaches.",
                    "properties": {
                        "operators": { "type": "array", "items": { "type": "object" } },
                        "by_kind": { "type": "array", "items": { "type": "object" } },
                        "breaches": { "type": "array", "items": { "type": "object" } }
                    } }
            }
        },
        "Consignment": {
            "type": "object",
            "required": ["tracking", "operator", "kind", "accepted_at", "deadline", "contacts", "source", "state", "tracking_status"],
            "properties": {
                "tracking": { "type": "string" }, "operator": { "type": "string" }, "kind": { "type": "string" },
                "description": nullable("string"), "origin": nullable("string"), "destination": nullable("string"),
                "accepted_at": { "type": "string" }, "deadline": { "type": "string" },
                "contacts": { "type": "array", "items": { "type": "string" } },
                "source": { "type": "string", "enum": ["csv", "api"] },
                "state": { "type": "string", "enum": ["on_track", "delivered_on_time", "delivered_late", "overdue", "failed", "unknown"] },
                "warning": { "type": "string", "enum": ["stale", "at_risk"], "nullable": true },
                "tracking_status": { "type": "string", "enum": ["pre_transit", "in_transit", "out_for_delivery", "delivered", "failed_attempt", "exception", "returned", "lost", "unknown"] },
                "operator_status": nullable("string"), "location": nullable("string"),
                "last_event_at": nullable("string"), "delivered_at": nullable("string"), "last_poll_at": nullable("string"),
                "last_ok_at": nullable("string"), "error": nullable("string"), "unknown_reason": nullable("string"),
                "events": { "type": "array", "items": { "type": "object", "required": ["at", "status", "operator_status", "source"],
                    "properties": { "at": { "type": "string" }, "status": { "type": "string" }, "operator_status": { "type": "string" },
                        "location": nullable("string"), "source": { "type": "string", "enum": ["poll", "push"] } } } }
            }
        },
        "OperatorSummary": {
            "type": "object",
            "required": ["operator", "total", "states", "warnings"],
            "properties": {
                "operator": { "type": "string" }, "total": { "type": "integer" },
                "states": { "type": "object", "additionalProperties": { "type": "integer" } },
                "warnings": { "type": "integer" }, "on_time_ratio": nullable("number")
            }
        },
        "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "string" } } }
    })
}

fn ok(schema: Value) -> Value {
    json!({ "200": { "description": "OK", "content": { "application/json": { "schema": schema } } } })
}

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn list(key: &str, item: &str) -> Value {
    json!({ "type": "object", "required": [key], "properties": { key: { "type": "array", "items": r(item) } } })
}

pub fn document() -> Value {
    let token = json!([{ "bearer": [] }]);
    let read = json!({ "name": "token", "in": "query", "required": false, "schema": { "type": "string" },
        "description": "The API token, when daemon.public_status = false (or send it as a bearer header)." });
    json!({
        "openapi": "3.0.3",
        "info": { "title": "thongsuot API", "version": env!("CARGO_PKG_VERSION"),
            "description": "Read-only endpoints are public unless daemon.public_status = false; state-changing ones need the bearer token of daemon.api_token_env." },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas()
        },
        "paths": {
            "/api/v1/status": { "get": { "summary": "Every target's state", "parameters": [read], "responses": ok(r("Status")) } },
            "/api/v1/targets": { "get": {
                "summary": "Every target, or a page of those that match the filters, in name order",
                "parameters": [
                    read,
                    { "name": "group", "in": "query", "required": false, "schema": { "type": "string" }, "description": "Only this group's targets." },
                    { "name": "state", "in": "query", "required": false, "schema": { "type": "string", "enum": ["up", "down", "unknown", "degraded"] }, "description": "Only targets in this state (degraded: congested now)." },
                    { "name": "kind", "in": "query", "required": false, "schema": { "type": "string" }, "description": "Only targets of this probe kind (http, tcp, icmp, dns, tls, sip, …)." },
                    { "name": "offset", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 0 }, "description": "Skip this many matching targets." },
                    { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1 }, "description": "At most this many targets (default: all)." }
                ],
                "responses": {
                    "200": { "description": "OK", "content": { "application/json": { "schema": {
                        "type": "object", "required": ["total", "offset", "next_offset", "targets"],
                        "properties": {
                            "total": { "type": "integer", "description": "How many targets match the filters." },
                            "offset": { "type": "integer" },
                            "next_offset": { "type": "integer", "nullable": true, "description": "The offset of the next page; null on the last." },
                            "targets": { "type": "array", "items": r("TargetStatus") }
                        } } } } },
                    "400": { "description": "An unknown state, or limit=0" }
                } } },
            "/api/v1/targets/{name}": { "get": {
                "summary": "One target and its SLA figures per window",
                "parameters": [{ "name": "name", "in": "path", "required": true, "schema": { "type": "string" } }, read],
                "responses": {
                    "200": { "description": "OK", "content": { "application/json": { "schema": {
                        "type": "object", "required": ["target", "sla"],
                        "properties": { "target": r("TargetStatus"), "sla": { "type": "array", "items": {
                            "type": "object", "required": ["window", "from", "to", "figures"],
                            "properties": { "window": { "type": "string" }, "from": { "type": "string" }, "to": { "type": "string" }, "figures": r("Figures") } } } }
                    } } } },
                    "404": { "description": "No such target", "content": { "application/json": { "schema": r("Error") } } }
                } } },
            "/api/v1/incidents": { "get": {
                "summary": "Open incidents, or all of the last days",
                "parameters": [{ "name": "state", "in": "query", "schema": { "type": "string", "enum": ["open", "all"] } },
                               { "name": "days", "in": "query", "schema": { "type": "integer" } }, read],
                "responses": ok(list("incidents", "Incident")) } },
            "/api/v1/incidents/{id}": { "get": {
                "summary": "One incident",
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } }, read],
                "responses": { "200": { "description": "OK", "content": { "application/json": { "schema": r("Incident") } } },
                               "404": { "description": "No such incident", "content": { "application/json": { "schema": r("Error") } } } } } },
            "/api/v1/incidents/{id}/ack": { "post": {
                "summary": "Acknowledge: reminders and escalation stop (bearer token, or the signed link of an e-mail)",
                "security": token,
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } }],
                "responses": { "200": { "description": "Acknowledged" }, "401": { "description": "No or wrong token" }, "404": { "description": "No such incident" } } } },
            "/api/v1/periods": { "get": { "summary": "Exam periods", "parameters": [read], "responses": ok(list("periods", "Period")) } },
            "/api/v1/report": { "get": {
                "summary": "SLA report (as `thongsuot report --format json`)",
                "parameters": [{ "name": "period", "in": "query", "schema": { "type": "string" } },
                               { "name": "from", "in": "query", "schema": { "type": "string" } },
                               { "name": "to", "in": "query", "schema": { "type": "string" } }, read],
                "responses": { "200": { "description": "OK", "content": { "application/json": { "schema": r("Report") } } },
                               "400": { "description": "Bad window", "content": { "application/json": { "schema": r("Error") } } } } } },
            "/api/v1/heartbeat/{target}": { "post": {
                "summary": "A push from a heartbeat target", "security": token,
                "parameters": [{ "name": "target", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": { "200": { "description": "Recorded" }, "401": { "description": "No or wrong token" }, "404": { "description": "No heartbeat target of that name" } } } },
            "/api/v1/consignments": {
                "get": {
                    "summary": "Consignments (nearest deadline first), counts per operator, and the CSV file's bad rows",
                    "parameters": [{ "name": "state", "in": "query", "schema": { "type": "string" } },
                                   { "name": "operator", "in": "query", "schema": { "type": "string" } },
                                   { "name": "limit", "in": "query", "schema": { "type": "integer", "default": 1000 } }, read],
                    "responses": { "200": { "description": "OK", "content": { "application/json": { "schema": {
                        "type": "object", "required": ["generated_at", "operators", "csv_errors", "total", "consignments"],
                        "properties": {
                            "generated_at": { "type": "string" }, "total": { "type": "integer" },
                            "operators": { "type": "array", "items": r("OperatorSummary") },
                            "csv_errors": { "type": "array", "items": { "type": "string" } },
                            "consignments": { "type": "array", "items": r("Consignment") }
                        } } } } },
                        "400": { "description": "Unknown state" } } },
                "post": {
                    "summary": "Register one consignment (an object) or many (an array)", "security": token,
                    "responses": { "200": { "description": "Registered (errors list the refused ones by index)" },
                                   "400": { "description": "Not JSON" }, "401": { "description": "No or wrong token" },
                                   "422": { "description": "Nothing registered" } } } },
            "/api/v1/consignments/{tracking}": { "get": {
                "summary": "One consignment with its tracking events",
                "parameters": [{ "name": "tracking", "in": "path", "required": true, "schema": { "type": "string" } }, read],
                "responses": { "200": { "description": "OK", "content": { "application/json": { "schema": r("Consignment") } } },
                               "404": { "description": "No such consignment" } } } },
            "/api/v1/postal/{operator}/events": { "post": {
                "summary": "Tracking events pushed by an operator, signed: X-Signature-256: sha256=<hex HMAC-SHA256 of the body>",
                "parameters": [{ "name": "operator", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": { "200": { "description": "Accepted (unknown tracking numbers and bad events are listed)" },
                               "400": { "description": "Not a JSON object or array" },
                               "401": { "description": "Missing or wrong signature" },
                               "403": { "description": "Pushes not enabled for this operator" },
                               "404": { "description": "No such operator" } } } },
            "/-/reload": { "post": { "summary": "Re-read the config file", "security": token,
                "responses": { "200": { "description": "Applied" }, "400": { "description": "Rejected; the old config keeps running" }, "401": { "description": "No or wrong token" } } } },
            "/healthz": { "get": { "summary": "Liveness", "responses": { "200": { "description": "alive" } } } },
            "/readyz": { "get": { "summary": "Readiness", "responses": { "200": { "description": "ready" }, "503": { "description": "starting or stopping" } } } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "text exposition" } } } }
        }
    })
}
