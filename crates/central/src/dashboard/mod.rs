//! The web dashboard at `/`: server-rendered pages (maud) that show what the REST API answers,
//! forms whose actions go through the same API in-process, and live updates over server-sent
//! events (`/events`) that our own script (`/static/live.js`) turns into fresh page regions.
//! No CDN: the stylesheet and the script are ours, compiled into the binary.
//!
//! The dashboard takes the API token: a login page sets it as an HttpOnly, SameSite=Strict
//! cookie (`Secure` when served over TLS); `?token=` on any page does the same and redirects.

mod campaigns;
mod chart;
mod home;
mod pile;
mod piles;
mod sites;
mod transactions;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;
use serde_json::Value;
use tower::ServiceExt;

use crate::Central;

const COOKIE: &str = "ocpile_token";

/// What the dashboard's handlers share: the central system and its API, called in-process.
#[derive(Clone)]
pub struct Ui {
    pub central: Arc<Central>,
    api: Router,
}

impl Ui {
    /// Calls the REST API in-process with the token; the status and the JSON answer.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path).header(
            header::AUTHORIZATION,
            format!("Bearer {}", self.central.api_token()),
        );
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let req = req.body(body).expect("a valid request");
        let resp = match self.api.clone().oneshot(req).await {
            Ok(r) => r,
            Err(e) => match e {},
        };
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024 * 1024)
            .await
            .unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A GET that must succeed; else the error page's text.
    pub async fn get(&self, path: &str) -> Result<Value, Response> {
        match self.api("GET", path, None).await {
            (s, v) if s.is_success() => Ok(v),
            (s, v) => Err(error_page(
                s,
                v["error"].as_str().unwrap_or("the API failed"),
            )),
        }
    }
}

/// The text of a JSON value, or "" for null.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The head of every page.
fn head(title: &str, live: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · ocpile" }
            link rel="stylesheet" href="/static/style.css";
            @if live { script src="/static/live.js" defer {} }
        }
    }
}

/// A page: the navigation, a message from the last action, and the content.
pub fn page(title: &str, flash: Option<&str>, content: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title, true))
                body {
                    nav {
                        a.brand href="/" { "ocpile" }
                        a href="/" { "Fleet" }
                        a href="/piles" { "Piles" }
                        a href="/transactions" { "Transactions" }
                        a href="/campaigns" { "Campaigns" }
                        a href="/sites" { "Sites" }
                        a href="/handshakes" { "Refused handshakes" }
                        form.logout method="post" action="/logout" { button { "Log out" } }
                    }
                    main {
                        @if let Some(f) = flash {
                            p.flash id="flash" { (f) }
                        }
                        (content)
                    }
                }
            }
        }
        .into_string(),
    )
}

pub fn error_page(status: StatusCode, why: &str) -> Response {
    (
        status,
        page(
            "Error",
            None,
            html! { h1 { "Error" } p.error { (status.as_u16()) ": " (why) } },
        ),
    )
        .into_response()
}

/// Back to `to` with a message shown at the top.
pub fn back(to: &str, message: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    let msg = percent_encoding::utf8_percent_encode(message, percent_encoding::NON_ALPHANUMERIC);
    Redirect::to(&format!("{to}{sep}msg={msg}")).into_response()
}

/// The outcome of an API call, as a message.
pub fn outcome(status: StatusCode, body: &Value) -> String {
    if status.is_success() {
        match body.get("response") {
            Some(r) => format!("answered {r}"),
            None => "done".into(),
        }
    } else if let Some(e) = body.get("call_error") {
        format!(
            "CALLERROR {}: {}",
            text(&e["code"]),
            text(&e["description"])
        )
    } else {
        format!(
            "{}: {}",
            status.as_u16(),
            body["error"].as_str().unwrap_or("failed")
        )
    }
}

/// Decodes an `application/x-www-form-urlencoded` body into its pairs, in order.
pub fn form_pairs(body: &Bytes) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[derive(Deserialize)]
pub struct Flash {
    pub msg: Option<String>,
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
}

fn valid(central: &Central, token: &str) -> bool {
    central.accepts_token(token)
}

fn set_cookie(central: &Central, value: &str, max_age: Option<u32>) -> HeaderValue {
    let secure = if central.options().tls_cert.is_some() {
        "; Secure"
    } else {
        ""
    };
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/{secure}{age}"
    ))
    .expect("a valid cookie")
}

/// Pages need the token: a valid cookie, or `?token=` (which sets the cookie and redirects to
/// the same page without it); else the login page.
async fn require_login(State(ui): State<Ui>, req: Request, next: Next) -> Response {
    let central = &ui.central;
    if cookie_token(req.headers()).is_some_and(|t| valid(central, &t)) {
        return next.run(req).await;
    }
    let uri = req.uri().clone();
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    if let Some((_, token)) = query.iter().find(|(k, _)| k == "token") {
        if valid(central, token) {
            let rest: Vec<String> = query
                .iter()
                .filter(|(k, _)| k != "token")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let to = if rest.is_empty() {
                uri.path().to_owned()
            } else {
                format!("{}?{}", uri.path(), rest.join("&"))
            };
            let mut resp = Redirect::to(&to).into_response();
            resp.headers_mut()
                .insert(header::SET_COOKIE, set_cookie(central, token, None));
            return resp;
        }
    }
    if req.uri().path() == "/events" {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Redirect::to("/login").into_response()
}

async fn login_page(Query(q): Query<Flash>) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head("Log in", false))
                body.login {
                    main {
                        h1 { "ocpile central" }
                        @if let Some(m) = q.msg { p.error { (m) } }
                        form method="post" action="/login" {
                            label { "API token " input type="password" name="token" autofocus required; }
                            button type="submit" { "Log in" }
                        }
                        p.hint { "The token was printed at the first start; it is kept in the database (the setting api_token)." }
                    }
                }
            }
        }
        .into_string(),
    )
}

async fn login(State(ui): State<Ui>, body: Bytes) -> Response {
    let pairs = form_pairs(&body);
    match field(&pairs, "token") {
        Some(t) if valid(&ui.central, t.trim()) => {
            let mut resp = Redirect::to("/").into_response();
            resp.headers_mut()
                .insert(header::SET_COOKIE, set_cookie(&ui.central, t.trim(), None));
            resp
        }
        _ => Redirect::to("/login?msg=That%20is%20not%20the%20token").into_response(),
    }
}

async fn logout(State(ui): State<Ui>) -> Response {
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&ui.central, "", Some(0)));
    resp
}

/// `GET /events`: one `change` event per change the central system sees (a pile's message, a
/// connection, a campaign's progress); its data names what changed.
async fn events(State(ui): State<Ui>) -> impl IntoResponse {
    let rx = ui.central.subscribe_changes();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let data = match rx.recv().await {
            Ok(what) => what,
            // Too many changes to tell apart: everything may have changed.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => "*".to_owned(),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((
            Ok::<_, Infallible>(Event::default().event("change").data(data)),
            rx,
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("style.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("live.js"),
    )
        .into_response()
}

/// The path of a pile's page, `/piles/{id}` with the identity escaped.
pub fn pile_path(id: &str) -> String {
    format!("/piles/{}", ocpp::identity::encode_segment(id))
}

/// A link to a pile's page.
pub fn pile_link(id: &str) -> Markup {
    html! { a href=(pile_path(id)) { (id) } }
}

/// A time as the API gives it, shorter.
pub fn when(v: &Value) -> String {
    let t = text(v);
    t.replace('T', " ").trim_end_matches('Z').to_owned()
}

/// Every route of the dashboard.
pub fn router(central: Arc<Central>) -> Router {
    let ui = Ui {
        api: crate::api::router(central.clone()),
        central,
    };
    let pages = Router::new()
        .route("/", get(home::show))
        .route("/piles", get(piles::list))
        .route("/piles/{id}", get(pile::show))
        .route("/piles/{id}/approve", post(pile::approve))
        .route("/piles/{id}/vendor", post(pile::vendor))
        .route("/piles/{id}/command", post(pile::command))
        .route("/transactions", get(transactions::list))
        .route("/transactions/{id}", get(transactions::show))
        .route("/campaigns", get(campaigns::list).post(campaigns::create))
        .route("/campaigns/{id}", get(campaigns::show))
        .route("/campaigns/{id}/cancel", post(campaigns::cancel))
        .route("/sites", get(sites::list))
        .route("/sites/{id}", get(sites::show))
        .route("/handshakes", get(piles::refused))
        .route("/events", get(events))
        .route("/logout", post(logout))
        .layer(axum::middleware::from_fn_with_state(
            ui.clone(),
            require_login,
        ));
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/static/style.css", get(style))
        .route("/static/live.js", get(script))
        .merge(pages)
        .with_state(ui)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_token_makes_a_cookie_that_reads_back() {
        for token in ["T", "a b;c=d", "zwölf\n", "0N-VNIeZ_T7g"] {
            let value =
                percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            let header = HeaderValue::from_str(&format!("{COOKIE}={value}")).unwrap();
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, header);
            assert_eq!(cookie_token(&headers).as_deref(), Some(token));
        }
    }
}
