//! The OpenAPI document, generated from the handlers and their types, served at
//! `/api/openapi.json`.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{
    campaigns, commands, fleet, nodes, pile_security, piles, records, security, signer, sites,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ocpile central system",
        description = "The REST API of ocpile central. OCPP 1.6J piles connect at \
            /ocpp/{identity} (subprotocol ocpp1.6). Every /api path needs \
            `Authorization: Bearer <token>`; errors are `{\"error\": \"reason\"}`."
    ),
    paths(
        fleet::list,
        fleet::overview,
        nodes::list,
        piles::register,
        piles::show,
        pile_security::change,
        pile_security::rotate,
        piles::delete,
        piles::approve,
        piles::reject,
        piles::configuration,
        piles::configuration_history,
        piles::read_configuration,
        piles::vendor,
        piles::patch_vendor,
        commands::list,
        commands::send,
        records::messages,
        records::deviations,
        records::events,
        records::status_history,
        records::transactions,
        records::transaction,
        records::meter_values,
        records::id_tags,
        records::post_id_tag,
        records::id_tag,
        records::put_id_tag,
        records::delete_id_tag,
        records::refused,
        campaigns::images,
        campaigns::upload,
        campaigns::sign,
        campaigns::list,
        campaigns::create,
        campaigns::show,
        campaigns::cancel,
        sites::list,
        sites::create,
        sites::show,
        sites::change,
        sites::delete,
        sites::add_pile,
        sites::remove_pile,
        sites::allocations,
        security::ca,
        security::renew,
        security::certificates,
        security::events,
        security::pile_events,
        signer::root,
        signer::show,
        signer::set,
        signer::demo,
        openapi,
        super::metrics,
        crate::health::health,
        crate::firmware::serve,
    ),
    modifiers(&BearerToken, &CommonAnswers),
    security(("bearer" = [])),
    tags(
        (name = "piles", description = "Registration, approval, state, configuration and the \
            vendor keys (FAQ 3.1-3.16)"),
        (name = "commands", description = "Any central-to-pile action, decoded strictly, sent \
            through the pile's queue, its answer awaited; every command and its result stored"),
        (name = "records", description = "What the central recorded: the raw message log, \
            deviations, events, statuses, transactions and their meter values, refused \
            handshakes"),
        (name = "id-tags", description = "The idTags the central authorizes by"),
        (name = "firmware", description = "Firmware images, served to the piles over plain HTTP \
            (FAQ 3.17)"),
        (name = "campaigns", description = "Firmware upgrades of many piles, a batch at a time \
            (FAQ 3.10, 3.17)"),
        (name = "sites", description = "Piles that share a grid connection: the capacity \
            divided among their sessions with charging profiles, and every decision recorded"),
        (name = "security", description = "The security extension (OCPP 1.6 Security \
            Whitepaper): the central's CA, the certificates it signed for the piles (SignCertificate) \
            and the CSRs it refused, the security events, the firmware signer of signed campaigns"),
        (name = "system", description = "This document, the metrics, the node's health and the central's nodes"),
    )
)]
struct ApiDoc;

/// The bearer token every `/api` path needs (`--api-token`, or the one kept in the database).
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_default()
            .add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "the central's API token: --api-token, or the one kept in its database \
                         (printed at the first start)",
                    ))
                    .build(),
            ),
        );
    }
}

/// What any `/api` operation may answer besides its own: 401 without the token, 503 when the
/// store fails.
struct CommonAnswers;

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Error")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/") {
                continue;
            }
            let store = path != "/api/openapi.json";
            for operation in operations(item) {
                let answers = &mut operation.responses.responses;
                answers.insert(
                    "401".into(),
                    error("no valid `Authorization: Bearer <token>` header").into(),
                );
                if store {
                    answers.insert(
                        "503".into(),
                        error("the store failed; the reason is in `error`").into(),
                    );
                }
            }
        }
    }
}

/// The document as JSON, computed once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the document serializes")
    })
}

/// This document
#[utoipa::path(get, path = "/api/openapi.json", operation_id = "openapi", tag = "system",
    responses((status = 200, description = "the OpenAPI 3.1 document", body = Object)))]
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}
