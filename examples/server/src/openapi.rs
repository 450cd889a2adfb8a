//! The OpenAPI document: the personal space and the other routes are kept by hand in
//! `openapi.json`; each route of an org's space (`/api/orgs/{org}/...`) is derived from its
//! personal twin with the `org` parameter, its permission (`x-permission`), the org API key
//! scheme and the org's `403`/`404`; every route under `/api/orgs/{org}` also lists the
//! `403 sso_required` of an org that enforces its single sign-on. A test checks that the
//! document describes every route the router serves and nothing else.

use std::sync::LazyLock;

use serde_json::{Value, json};

use crate::routes::{ORG_SPACE, PERSONAL, SPACE_ROUTES};

/// The hand-kept part.
const KEPT: &str = include_str!("openapi.json");

/// The document served at `/openapi.json`.
pub static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut doc: Value = serde_json::from_str(KEPT).expect("openapi.json is JSON");
    add_org_spaces(&mut doc);
    add_sso_required(&mut doc);
    doc.to_string()
});

/// Adds the org twin of every space route.
fn add_org_spaces(doc: &mut Value) {
    for route in SPACE_ROUTES {
        let personal = format!("{PERSONAL}{}", route.path);
        let mut operation = doc["paths"][&personal][route.method].clone();
        assert!(
            operation.is_object(),
            "openapi.json has no {} {personal}",
            route.method
        );
        if let Some(summary) = operation["summary"].as_str() {
            operation["summary"] = json!(format!("{summary} (in an org's space)"));
        }
        if let Some(id) = operation["operationId"].as_str() {
            operation["operationId"] = json!(format!("org_{id}"));
        }
        operation["x-permission"] = json!(route.permission.as_str());
        operation["security"] = json!([{ "bearer": [] }, { "orgApiKey": [] }]);
        let org = json!({
            "name": "org",
            "in": "path",
            "required": true,
            "description": "The org's id: the request acts in its space (its apps, jobs, uploads and pooled quota)",
            "schema": { "type": "string" }
        });
        match operation["parameters"].as_array_mut() {
            Some(parameters) => parameters.insert(0, org),
            None => operation["parameters"] = json!([org]),
        }
        let responses = &mut operation["responses"];
        responses["403"] = json!({
            "description": "A member (or key) whose role lacks the permission (`forbidden`, `details.permission`)"
        });
        let missing = "No such org, or the caller is not a member of it (a non-member, a key of another org): never 403 for an org one does not belong to";
        let described = responses["404"]["description"]
            .as_str()
            .map(|d| format!("{d}; or {missing}"));
        responses["404"] =
            json!({ "description": described.unwrap_or_else(|| missing.to_owned()) });
        let path = format!("{ORG_SPACE}{}", route.path);
        doc["paths"][&path][route.method] = operation;
    }
}

/// What every route under `/api/orgs/{org}` may answer a signed-in user when the org
/// enforces its single sign-on (`routes::orgs::sso::enforce`).
const SSO_REQUIRED: &str = "a member whose email is in the org's domains, signed in otherwise than through the org's single sign-on while the org enforces it (`sso_required`; owners are exempt)";

/// Adds [`SSO_REQUIRED`] to the `403` of every operation under `/api/orgs/{org}`.
fn add_sso_required(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        if !path.starts_with("/api/orgs/{org}") {
            continue;
        }
        let Some(operations) = item.as_object_mut() else {
            continue;
        };
        for operation in operations.values_mut().filter(|o| o.is_object()) {
            let responses = &mut operation["responses"];
            let described = match responses["403"]["description"].as_str() {
                Some(d) => format!("{d}; or {SSO_REQUIRED}"),
                None => format!("Refused: {SSO_REQUIRED}"),
            };
            responses["403"]["description"] = json!(described);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::DOCUMENT;
    use crate::routes::ROUTES;

    #[test]
    fn describes_every_route_and_no_other() {
        let doc: serde_json::Value = serde_json::from_str(&DOCUMENT).unwrap();
        let mut described = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                described.insert((method.clone(), path.clone()));
            }
        }
        let served: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(described, served);
    }

    #[test]
    fn every_org_route_may_answer_sso_required() {
        let doc: serde_json::Value = serde_json::from_str(&DOCUMENT).unwrap();
        let mut seen = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            if !path.starts_with("/api/orgs/{org}") {
                continue;
            }
            for (method, operation) in item.as_object().unwrap() {
                let text = operation["responses"]["403"]["description"]
                    .as_str()
                    .unwrap_or_default();
                assert!(text.contains("sso_required"), "{method} {path}: {text}");
                seen += 1;
            }
        }
        assert!(seen > 50, "{seen} org routes");
    }
}
