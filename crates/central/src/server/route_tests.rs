//! The OpenAPI document against the router: every route the server is built from is
//! documented, and nothing else.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;

const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// `METHOD /path` of every operation of the document.
fn documented() -> BTreeSet<String> {
    let doc: serde_json::Value = serde_json::from_str(crate::api::doc::document()).unwrap();
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    operations
}

/// `METHOD /path` of every route the router is built from, outside the OCPP websockets:
/// each method is tried on each path, with `0` for its parameters and the token, and
/// counts unless the router answers 405.
async fn routed() -> BTreeSet<String> {
    let dir = std::env::temp_dir().join(format!("central-routes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut options = crate::Options::new(&dir);
    options.listen = "127.0.0.1:0".parse().unwrap();
    options.api_token = Some("T".into());
    let running = crate::server::start(options).await.unwrap();
    let router = crate::api::router(running.central.clone());
    let paths = crate::api::api_routes()
        .into_iter()
        .map(|(path, _)| format!("/api{path}"))
        .chain(
            crate::api::open_routes()
                .into_iter()
                .map(|(path, _)| path.to_owned()),
        );
    let mut operations = BTreeSet::new();
    for path in paths {
        let concrete: Vec<String> = path
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    "0".into()
                } else {
                    s.into()
                }
            })
            .collect();
        for method in METHODS {
            let request = Request::builder()
                .method(method.clone())
                .uri(concrete.join("/"))
                .header("authorization", "Bearer T")
                .body(Body::empty())
                .unwrap();
            let answer = router.clone().oneshot(request).await.unwrap();
            if answer.status() != StatusCode::METHOD_NOT_ALLOWED {
                operations.insert(format!("{method} {path}"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    operations
}

/// Every route is in the generated document, and the document lists nothing else.
#[tokio::test(flavor = "multi_thread")]
async fn the_document_lists_every_route_and_nothing_else() {
    let routed = routed().await;
    let documented = documented();
    assert_eq!(
        routed.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "routes missing from the document"
    );
    assert_eq!(
        documented.difference(&routed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented operations no route serves"
    );
    assert!(routed.len() > 30, "{routed:?}");
}

/// Operation ids name one operation each (clients and test tools key on them), and every
/// schema a reference names is in the document.
#[test]
fn operation_ids_are_unique_and_references_resolve() {
    let doc: serde_json::Value = serde_json::from_str(crate::api::doc::document()).unwrap();
    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
        }
    }
    let text = crate::api::doc::document();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let prefix = "\"#/components/schemas/";
    for (i, _) in text.match_indices(prefix) {
        let name = text[i + prefix.len()..].split('"').next().unwrap();
        assert!(schemas.contains_key(name), "{name} is not in components");
    }
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}
