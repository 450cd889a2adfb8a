//! The router's OpenAPI 3.1 document: the operations are listed once, beside the routes, and
//! every schema is generated from the Rust type the handler reads or writes (`schemars`), so a
//! renamed field changes the document with the code.
//!
//! `schemars` rather than `utoipa` or `aide`: the family already derives JSON schemas with it
//! (structured model outputs), and aide's `schemars` 1.x support is not released yet.

use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

use super::{Accepted, ChatBody, ErrorBody, FullAppBody, JobView, ModifyBody, PlanBody};

/// One response of an operation: its status, what it means and its JSON body's schema
/// (`None`: not JSON).
type Answer = (u16, &'static str, Option<Schema>);

struct Operation {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<Schema>,
    answers: Vec<Answer>,
    authenticated: bool,
}

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Option<Schema> {
    Some(generator.subschema_for::<T>())
}

/// The operations of the router, in the order it declares its routes.
fn operations(g: &mut SchemaGenerator) -> Vec<Operation> {
    let error = |g: &mut SchemaGenerator, status: u16, what: &'static str| -> Answer {
        (status, what, schema::<ErrorBody>(g))
    };
    let submit = |g: &mut SchemaGenerator, body: Option<Schema>, summary, with_app: bool| {
        let mut answers = vec![
            (202, "accepted: the job to follow", schema::<Accepted>(g)),
            error(
                g,
                400,
                "a body that does not match the schema, a field over its plan limit, or invalid (`details.field`: its path; `details.limit`); with images attached, the request's estimated input tokens over `request_tokens` (`details.estimatedTokens`, `details.imageTokens`)",
            ),
            error(g, 401, "no or invalid credentials"),
            error(g, 403, "the authentication refused the user"),
            error(g, 415, "not `application/json`"),
            error(
                g,
                413,
                "a body larger than the host accepts (`body_too_large`)",
            ),
            error(
                g,
                429,
                "the quota is spent: `details` holds every window; `Retry-After` says when",
            ),
        ];
        answers.push(error(
            g,
            404,
            if with_app {
                "`appId` names no app of the space, or an attachment no upload of it (`details.uploadId`)"
            } else {
                "an attachment names no upload of the space (`details.uploadId`)"
            },
        ));
        (body, summary, answers)
    };
    let mut out = Vec::new();
    for (path, (body, summary, answers)) in [
        ("/ai-builder/full-app", {
            let body = schema::<FullAppBody>(g);
            submit(g, body, "Generate a whole app", true)
        }),
        ("/ai-builder/modify", {
            let body = schema::<ModifyBody>(g);
            submit(
                g,
                body,
                "Change an app (given, or saved with `appId`)",
                true,
            )
        }),
        ("/ai-builder/plan-phases", {
            let body = schema::<PlanBody>(g);
            submit(g, body, "Plan an app in phases", false)
        }),
    ] {
        out.push(Operation {
            method: "post",
            path,
            summary,
            body,
            answers,
            authenticated: true,
        });
    }
    let (body, _, mut answers) = {
        let body = schema::<ChatBody>(g);
        submit(g, body, "", false)
    };
    answers.retain(|answer| answer.0 != 202);
    answers.insert(
        0,
        (
            200,
            "`text/event-stream`: `delta` events (`{text}`), then `done` (`{usage, stopReason, provider}`) or `error` (`{message}`)",
            None,
        ),
    );
    out.push(Operation {
        method: "post",
        path: "/chat",
        summary: "A chat message about an app, answered at once as Server-Sent Events (one of the space's chat messages)",
        body,
        answers,
        authenticated: true,
    });
    let job_answers = |g: &mut SchemaGenerator| {
        vec![
            (200, "the job", schema::<JobView>(g)),
            error(g, 401, "no or invalid credentials"),
            error(g, 404, "no job of the user's with this id"),
        ]
    };
    out.push(Operation {
        method: "get",
        path: "/jobs/{id}",
        summary: "A job: status, progress, result or error",
        body: None,
        answers: job_answers(g),
        authenticated: true,
    });
    out.push(Operation {
        method: "delete",
        path: "/jobs/{id}",
        summary: "Cancel a job",
        body: None,
        answers: job_answers(g),
        authenticated: true,
    });
    out.push(Operation {
        method: "get",
        path: "/jobs/{id}/events",
        summary: "A job's events as Server-Sent Events: `state`, `progress`, then one of `completed`, `failed`, `cancelled`",
        body: None,
        answers: vec![
            (200, "`text/event-stream`", None),
            error(g, 401, "no or invalid credentials"),
            error(g, 404, "no job of the user's with this id"),
        ],
        authenticated: true,
    });
    out.push(Operation {
        method: "get",
        path: "/quota",
        summary: "The user's plan, windows and limits",
        body: None,
        answers: vec![
            (
                200,
                "the quota status (and the member's own count against the org's cap per member)",
                schema::<super::QuotaView>(g),
            ),
            error(g, 401, "no or invalid credentials"),
        ],
        authenticated: true,
    });
    out.push(Operation {
        method: "get",
        path: "/openapi.json",
        summary: "This document",
        body: None,
        answers: vec![(200, "the OpenAPI document", None)],
        authenticated: false,
    });
    // The host's space check (`Authenticate::space`) may refuse any authenticated call.
    for op in out.iter_mut().filter(|op| op.authenticated) {
        for (status, what) in [
            (
                403,
                "the authentication refused the user, or the user's role in the request's space lacks the permission",
            ),
            (
                404,
                "nothing with this id in the request's space, or a space the user does not belong to",
            ),
        ] {
            if !op.answers.iter().any(|answer| answer.0 == status) {
                op.answers.push(error(g, status, what));
            }
        }
        op.answers.push(error(
            g,
            500,
            "an internal error (`internal`): a store or the host's check failed",
        ));
        op.answers.sort_by_key(|answer| answer.0);
    }
    out
}

/// The OpenAPI 3.1 document of [`router`](super::router), with paths relative to where the
/// host mounts it (pass the prefix as `server_url`, for example `/builder`).
#[must_use]
pub fn openapi(server_url: &str) -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let mut paths = Map::new();
    for op in operations(&mut generator) {
        let mut responses = Map::new();
        for (status, description, schema) in op.answers {
            let mut answer = json!({ "description": description });
            if let Some(schema) = schema {
                answer["content"] = json!({ "application/json": { "schema": schema } });
            } else if (op.path.ends_with("/events") || op.path == "/chat") && status == 200 {
                answer["content"] =
                    json!({ "text/event-stream": { "schema": { "type": "string" } } });
            }
            responses.insert(status.to_string(), answer);
        }
        let mut operation = json!({ "summary": op.summary, "responses": responses });
        if let Some(body) = op.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": body } },
            });
        }
        if op.path.contains("{id}") {
            operation["parameters"] = json!([{
                "name": "id", "in": "path", "required": true, "schema": { "type": "string" },
            }]);
        }
        operation["security"] = if op.authenticated {
            json!([{ "bearer": [] }])
        } else {
            json!([])
        };
        let item = paths
            .entry(op.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        item[op.method] = operation;
    }
    let schemas = generator.take_definitions(true);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "appforge generation API",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "servers": [{ "url": server_url }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
        },
    })
}
