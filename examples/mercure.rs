//! A Mercure-protocol hub at `/.well-known/mercure`, on `axum_sse::hub`.
//!
//! ```text
//! MERCURE_PUBLISHER_JWT_KEY='!ChangeThisMercureHubJWTSecretKey!' cargo run --features hub --example mercure
//! open http://127.0.0.1:3000/
//! curl -N 'http://127.0.0.1:3000/.well-known/mercure?match=https://example.com/books/1'
//! curl -X POST http://127.0.0.1:3000/.well-known/mercure -H "Authorization: Bearer $TOKEN" \
//!   -d topic=https://example.com/books/1 -d 'data={"title":"Dune"}'
//! ```
//!
//! What it implements of the Mercure specification (dunglas/mercure,
//! `spec/mercure.md`):
//!
//! - **Subscribe**: `GET /.well-known/mercure` with `match` / `match_exact`
//!   (exact), `match_urlpattern` (WHATWG URL Pattern; relative patterns
//!   resolve against the hub's URL), and the older `topic` (the topic, `*`,
//!   or an RFC 6570 level-1 URI template). Another parameter in the `match`
//!   namespace is a `400`. One connection, any number of matchers (up to
//!   `MAX_MATCHERS`), one `Last-Event-ID`.
//! - **Resume**: the `Last-Event-ID` header, else the `last_event_id` (or
//!   older `lastEventID`) query parameter; `earliest` replays the whole
//!   history. When one was given, the response has `Mercure-Last-Event-ID`:
//!   that id, or `earliest` when the hub could not resume from it.
//! - **Publish**: `POST /.well-known/mercure`, a form with `topic`
//!   (repeatable: canonical then alternates), `data`, `id`, `private`,
//!   `type`, `retry`; `200 text/plain; charset=utf-8` with the id. A topic
//!   `*` or under `/.well-known/mercure`, a type `mercure`, an id starting
//!   with `#` or `earliest`, a retry that is not digits: `400`.
//! - **Authorization**: a JWS bearer token in the `Authorization` header,
//!   else in the `mercureAuthorization` (or `__Secure-mercure_access_token`)
//!   cookie; HS256 with `MERCURE_PUBLISHER_JWT_KEY` for publishing and
//!   `MERCURE_SUBSCRIBER_JWT_KEY` (default: the publisher key) for
//!   subscribing; `aud` must hold `MERCURE_AUDIENCE` and `iss` equal
//!   `MERCURE_ISSUER` when those are set; `exp` and `nbf` enforced. Grants:
//!   RFC 9068 `at+jwt` tokens with `authorization_details` (type
//!   `https://mercure.rocks/authorization-detail`, `actions`, `topics` of
//!   `{match, match_type}`; `exp` required), or the older `mercure` claim
//!   (`subscribe` / `publish` arrays of selectors). Anonymous subscribers
//!   get public updates; publishing needs a token (`401`), covering every
//!   topic (`403`). A subscription ends at its token's `exp`.
//! - **Several instances**: with `REDIS_URL` (and `--features hub,redis`),
//!   every instance on that Redis is one hub: an update published on one
//!   reaches subscribers of all, and an id resumes on any.
//!
//! Not implemented: subscription events and the subscription API, discovery
//! and protected resource metadata, CORS, the `QUERY` method, JWE. Ids the
//! hub assigns are the hub log's opaque ids (`AbCdEfGhIjK.42`), not IRIs as
//! the spec asks; a publisher that needs IRIs sends its own `id`.
//!
//! Environment: `PORT` (3000), `MERCURE_PUBLISHER_JWT_KEY` (required),
//! `MERCURE_SUBSCRIBER_JWT_KEY`, `MERCURE_AUDIENCE`, `MERCURE_ISSUER`,
//! `MERCURE_HUB_URL` (default `http://127.0.0.1:$PORT/.well-known/mercure`),
//! `REDIS_URL`, `HISTORY` (10,000 updates).

use std::{
    sync::Arc,
    time::{Duration, UNIX_EPOCH},
};

use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::get,
    Router,
};
use axum_sse::{
    broadcast::Broadcast,
    hub::{Authorization, Hub, HubError, TopicSelector, Update},
    LastEventId, LastEventIdLayer, SseBody, SseLayer, SseShutdown,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

#[path = "support/mod.rs"]
mod support;

/// The path of the hub.
const HUB_PATH: &str = "/.well-known/mercure";
/// The type of a Mercure authorization detail.
const DETAIL_TYPE: &str = "https://mercure.rocks/authorization-detail";
/// Matchers per subscription.
const MAX_MATCHERS: usize = 100;
/// Grants per token (details × topics, or selectors of the `mercure` claim).
const MAX_GRANTS: usize = 1000;

struct Config {
    publisher_key: DecodingKey,
    subscriber_key: DecodingKey,
    audience: Option<String>,
    issuer: Option<String>,
    /// The hub's URL: the base of relative URL patterns and topics.
    hub_url: String,
}

#[derive(Clone)]
struct App {
    hub: Hub,
    config: Arc<Config>,
}

/// A refusal, with the `WWW-Authenticate` challenge the spec asks for.
enum Refusal {
    /// `400`, no challenge.
    BadRequest(String),
    /// `401`, `Bearer` with no error: a token is needed.
    NoToken,
    /// `401`, `error="invalid_token"`.
    InvalidToken,
    /// `400`, `error="invalid_request"`: the token's presentation is malformed.
    InvalidRequest,
    /// `403`, `error="insufficient_scope"`.
    InsufficientScope,
    Hub(HubError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let challenge = |status: StatusCode, value: &'static str, text: &'static str| {
            let mut response = (status, text).into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
            response
        };
        match self {
            Self::BadRequest(why) => (StatusCode::BAD_REQUEST, why).into_response(),
            Self::NoToken => challenge(StatusCode::UNAUTHORIZED, "Bearer", "a token is required"),
            Self::InvalidToken => challenge(
                StatusCode::UNAUTHORIZED,
                "Bearer error=\"invalid_token\"",
                "invalid token",
            ),
            Self::InvalidRequest => challenge(
                StatusCode::BAD_REQUEST,
                "Bearer error=\"invalid_request\"",
                "malformed authorization",
            ),
            Self::InsufficientScope => challenge(
                StatusCode::FORBIDDEN,
                "Bearer error=\"insufficient_scope\"",
                "the token does not grant this",
            ),
            Self::Hub(HubError::Forbidden) => Self::InsufficientScope.into_response(),
            Self::Hub(HubError::Expired) => Self::InvalidToken.into_response(),
            Self::Hub(err) => err.into_response(),
        }
    }
}

impl From<HubError> for Refusal {
    fn from(err: HubError) -> Self {
        Self::Hub(err)
    }
}

/// The token of the request: the `Authorization` header (which wins),
/// else the cookie.
fn presented_token(headers: &HeaderMap) -> Result<Option<String>, Refusal> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| Refusal::InvalidRequest)?;
        let (scheme, token) = value.split_once(' ').ok_or(Refusal::InvalidRequest)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(Refusal::InvalidRequest);
        }
        return Ok(Some(token.trim().to_owned()));
    }
    for cookies in headers.get_all(header::COOKIE) {
        let Ok(cookies) = cookies.to_str() else {
            continue;
        };
        for cookie in cookies.split(';') {
            if let Some((name, value)) = cookie.trim().split_once('=') {
                if name == "mercureAuthorization" || name == "__Secure-mercure_access_token" {
                    return Ok(Some(value.to_owned()));
                }
            }
        }
    }
    Ok(None)
}

/// A topic matcher of a token: `*`, exact or a URL pattern.
fn grant_selector(config: &Config, matcher: &Value) -> Option<TopicSelector> {
    let matcher = matcher.as_object()?;
    let text = matcher.get("match")?.as_str()?;
    match matcher.get("match_type").map(Value::as_str) {
        _ if text == "*" => Some(TopicSelector::any()),
        None | Some(Some("exact")) => TopicSelector::try_exact(text).ok(),
        Some(Some("urlpattern")) => {
            TopicSelector::url_pattern_with_base(text, &config.hub_url).ok()
        }
        // Not a string, or a matcher type this hub does not know: the
        // whole token is refused.
        _ => None,
    }
}

/// What a validated token's claims grant. `None`: a malformed grant (the
/// whole token is refused, never partly used).
fn grants(config: &Config, claims: &Value) -> Option<Authorization> {
    let mut auth = Authorization::anonymous();
    let mut count = 0;
    if let Some(details) = claims.get("authorization_details") {
        for detail in details.as_array()? {
            let detail = detail.as_object()?;
            if detail.get("type")?.as_str()? != DETAIL_TYPE {
                continue; // another API's detail
            }
            let actions = detail.get("actions")?.as_array()?;
            let topics = detail.get("topics")?.as_array()?;
            if actions.is_empty() || topics.is_empty() {
                return None;
            }
            let selectors = topics
                .iter()
                .map(|matcher| grant_selector(config, matcher))
                .collect::<Option<Vec<_>>>()?;
            for action in actions {
                let action = action.as_str()?;
                for selector in &selectors {
                    count += 1;
                    auth = match action {
                        "subscribe" => auth.subscribe(selector.clone()),
                        "publish" => auth.publish(selector.clone()),
                        _ => auth, // unknown actions grant nothing
                    };
                }
            }
        }
    } else if let Some(mercure) = claims.get("mercure") {
        // The pre-standard claim: selectors are topics, `*` or URI templates.
        let mercure = mercure.as_object()?;
        for (name, add) in [
            (
                "subscribe",
                Authorization::subscribe as fn(Authorization, TopicSelector) -> Authorization,
            ),
            ("publish", Authorization::publish),
        ] {
            let Some(list) = mercure.get(name) else {
                continue;
            };
            for selector in list.as_array()? {
                count += 1;
                auth = add(auth, TopicSelector::uri_template(selector.as_str()?).ok()?);
            }
        }
    }
    if count > MAX_GRANTS {
        return None;
    }
    if let Some(exp) = claims.get("exp") {
        auth = auth.expires_at_system(UNIX_EPOCH + Duration::from_secs(exp.as_u64()?));
    }
    Some(auth)
}

/// Validates `token` with `key` and returns what it grants.
fn authorize(config: &Config, key: &DecodingKey, token: &str) -> Result<Authorization, Refusal> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::InvalidToken)?;
    let at_jwt = header.typ.as_deref().is_some_and(|typ| {
        let typ = typ.to_ascii_lowercase();
        typ.strip_prefix("application/").unwrap_or(&typ) == "at+jwt"
    });
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.required_spec_claims.clear();
    if at_jwt {
        // RFC 9068 tokens must carry `exp`; pre-standard ones may not.
        validation.required_spec_claims.insert("exp".to_owned());
    }
    match &config.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            validation.required_spec_claims.insert("aud".to_owned());
        }
        None => validation.validate_aud = false,
    }
    if let Some(issuer) = &config.issuer {
        validation.set_issuer(&[issuer]);
        validation.required_spec_claims.insert("iss".to_owned());
    }
    let claims = jsonwebtoken::decode::<Value>(token, key, &validation)
        .map_err(|_| Refusal::InvalidToken)?
        .claims;
    if !at_jwt && claims.get("authorization_details").is_some() {
        // The current grants come only in RFC 9068 access tokens.
        return Err(Refusal::InvalidToken);
    }
    let auth = grants(config, &claims).ok_or(Refusal::InvalidToken)?;
    if auth.is_expired() {
        return Err(Refusal::InvalidToken);
    }
    Ok(auth)
}

fn form(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

async fn subscribe(
    State(app): State<App>,
    headers: HeaderMap,
    header_id: Option<LastEventId>,
    RawQuery(query): RawQuery,
) -> Result<Response, Refusal> {
    let config = &app.config;
    let mut selectors = Vec::new();
    let mut query_id = None;
    for (name, value) in form(query.unwrap_or_default().as_bytes()) {
        let selector = match name.as_str() {
            "match" | "match_exact" => TopicSelector::try_exact(&value),
            "match_urlpattern" => TopicSelector::url_pattern_with_base(&value, &config.hub_url),
            "topic" => TopicSelector::uri_template(&value),
            "last_event_id" | "lastEventID" => {
                query_id.get_or_insert(value);
                continue;
            }
            other if other.to_ascii_lowercase().starts_with("match") => {
                return Err(Refusal::BadRequest(format!(
                    "unknown matcher type `{other}`"
                )));
            }
            _ => continue, // unknown parameters are ignored
        };
        selectors.push(selector.map_err(|err| Refusal::BadRequest(err.to_string()))?);
        if selectors.len() > MAX_MATCHERS {
            return Err(Refusal::BadRequest(format!(
                "more than {MAX_MATCHERS} matchers"
            )));
        }
    }
    let auth = match presented_token(&headers)? {
        Some(token) => authorize(config, &config.subscriber_key, &token)?,
        None => Authorization::anonymous(),
    };
    // The header wins over the query parameter.
    let last = header_id
        .as_ref()
        .map(|id| id.as_str().to_owned())
        .or(query_id);
    let updates = app.hub.subscribe(selectors, auth, last.as_deref()).await?;
    let resumed_from = match &last {
        Some(_) if updates.missed_events() => Some("earliest"),
        Some(id) => Some(id.as_str()),
        None => None,
    }
    .and_then(|id| HeaderValue::from_str(id).ok());
    let mut response = SseBody::new(updates).into_response();
    if let Some(id) = resumed_from {
        response.headers_mut().insert("mercure-last-event-id", id);
    }
    Ok(response)
}

/// Whether `topic` names the hub's own namespace (`/.well-known/mercure`
/// and below), resolved against the hub's URL.
fn reserved(config: &Config, topic: &str) -> bool {
    let Ok(base) = url::Url::parse(&config.hub_url) else {
        return false;
    };
    let Ok(resolved) = base.join(topic) else {
        return false;
    };
    let path = percent_decode_unreserved(resolved.path());
    path == HUB_PATH || path.starts_with(&format!("{HUB_PATH}/"))
}

/// `path` with the percent-escapes of unreserved characters decoded
/// (`%6D` is `m`), as RFC 3986 normalization does.
fn percent_decode_unreserved(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let hex = rest
            .get(at + 1..at + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => {
                out.push(char::from(b));
                rest = &rest[at + 3..];
            }
            _ => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

async fn publish(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let config = &app.config;
    let token = presented_token(&headers)?.ok_or(Refusal::NoToken)?;
    let auth = authorize(config, &config.publisher_key, &token)?;

    let fields = form(&body);
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let bad = |why: &str| Err(Refusal::BadRequest(why.to_owned()));
    let mut topics = fields
        .iter()
        .filter(|(k, _)| k == "topic")
        .map(|(_, v)| v.as_str());
    let Some(canonical) = topics.next() else {
        return bad("at least one `topic` is required");
    };
    let mut update = Update::new(canonical);
    for topic in topics {
        update = update.topic(topic);
    }
    for topic in update.topics() {
        if topic == "*" || reserved(config, topic) {
            return bad("a topic may not be `*` or in the hub's namespace");
        }
    }
    update = update
        .data(get("data").unwrap_or(""))
        .private(get("private").is_some());
    if let Some(event_type) = get("type") {
        if event_type == "mercure" {
            return bad("the type `mercure` is reserved");
        }
        update = update.event(event_type);
    }
    if let Some(retry) = get("retry") {
        if retry.is_empty() || !retry.bytes().all(|b| b.is_ascii_digit()) {
            return bad("`retry` must be digits");
        }
        let millis = retry.parse().unwrap_or(u64::MAX);
        update = update.retry(Duration::from_millis(millis));
    }
    if let Some(id) = get("id") {
        if id.starts_with('#') {
            return bad("an `id` may not start with `#`");
        }
        update = update.id(id);
    }
    let id = app.hub.publish(update, &auth).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], id).into_response())
}

async fn connect() -> Broadcast {
    let history = support::env_or("HISTORY", 10_000);
    let builder = Broadcast::builder().history(history);
    match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => redis(builder, &url).await,
        _ => {
            tracing::info!(history, "hub log in memory");
            builder.build()
        }
    }
}

#[cfg(feature = "redis")]
async fn redis(builder: axum_sse::broadcast::BroadcastBuilder, url: &str) -> Broadcast {
    let log = builder
        .key_prefix("mercure:")
        .connect_redis(url)
        .await
        .unwrap_or_else(|err| panic!("cannot use Redis at {url}: {err}"));
    tracing::info!(url, "hub log in Redis");
    log
}

#[cfg(not(feature = "redis"))]
async fn redis(_: axum_sse::broadcast::BroadcastBuilder, _: &str) -> Broadcast {
    panic!("REDIS_URL is set: run with `--features hub,redis` to use Redis");
}

#[tokio::main]
async fn main() {
    support::init_logging();
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let publisher = env("MERCURE_PUBLISHER_JWT_KEY")
        .expect("set MERCURE_PUBLISHER_JWT_KEY: the HS256 key of publishers' tokens");
    let subscriber = env("MERCURE_SUBSCRIBER_JWT_KEY").unwrap_or_else(|| publisher.clone());
    let listener = support::bind().await;
    let addr = listener.local_addr().unwrap();
    let config = Config {
        publisher_key: DecodingKey::from_secret(publisher.as_bytes()),
        subscriber_key: DecodingKey::from_secret(subscriber.as_bytes()),
        audience: env("MERCURE_AUDIENCE"),
        issuer: env("MERCURE_ISSUER"),
        hub_url: env("MERCURE_HUB_URL").unwrap_or_else(|| format!("http://{addr}{HUB_PATH}")),
    };
    let hub = Hub::builder()
        .max_selectors(MAX_MATCHERS)
        .build(connect().await);
    let shutdown = SseShutdown::new();
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route(HUB_PATH, get(subscribe).post(publish))
        .with_state(App {
            hub,
            config: Arc::new(config),
        })
        .layer(
            SseLayer::builder()
                .heartbeat(Duration::from_secs(15))
                .last_event_id(LastEventIdLayer::new())
                .shutdown(shutdown.clone())
                .build(),
        );
    tracing::info!("Mercure hub on http://{addr}{HUB_PATH}, a page at http://{addr}/");
    support::serve_until_signal(listener, app, shutdown).await;
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>axum-sse Mercure hub</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 48rem; margin: 2rem auto; padding: 0 1rem; }
  #status { color: #666; font-size: 0.9em; }
  ol { list-style: none; padding: 0; }
  li { border-bottom: 1px solid #eee; padding: 0.3rem 0; white-space: pre-wrap; }
  li .meta { color: #888; font: 0.8em ui-monospace, monospace; margin-right: 0.6rem; }
</style>
</head>
<body>
<h1>axum-sse Mercure hub</h1>
<form id="subscribe">
  <input id="match" size="40" value="https://example.com/books/:id">
  <select id="kind"><option value="match_urlpattern">URL pattern</option><option value="match">exact</option></select>
  <button>Subscribe</button>
</form>
<p id="status">not subscribed</p>
<ol id="updates"></ol>
<p>Publish with a token: <code>curl -X POST /.well-known/mercure -H "Authorization: Bearer …" -d topic=https://example.com/books/1 -d data=hello</code></p>
<script>
  const list = document.getElementById("updates");
  const status = document.getElementById("status");
  let source = null;
  function subscribe(kind, value) {
    if (source) source.close();
    const url = new URL("/.well-known/mercure", location.href);
    url.searchParams.append(kind, value);
    source = new EventSource(url);
    source.onopen = () => { status.textContent = "subscribed to " + value; };
    source.onerror = () => { status.textContent = "reconnecting…"; };
    source.onmessage = (e) => {
      const li = document.createElement("li");
      const meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = e.lastEventId;
      li.append(meta, e.data);
      list.prepend(li);
    };
  }
  document.getElementById("subscribe").onsubmit = (e) => {
    e.preventDefault();
    subscribe(document.getElementById("kind").value, document.getElementById("match").value);
  };
  const params = new URLSearchParams(location.search);
  if (params.get("match")) subscribe("match", params.get("match"));
  else if (params.get("match_urlpattern")) subscribe("match_urlpattern", params.get("match_urlpattern"));
</script>
</body>
</html>
"#;
