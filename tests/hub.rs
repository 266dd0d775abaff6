//! The hub: selectors, authorization and private updates, expiry, one
//! cursor over many topics; over a real `axum::serve` where the wire is
//! checked, and on the streams themselves for the timed and the large
//! tests. `REDIS_URL` (`eval "$(.ci/redis.sh)"`) runs the Redis variant;
//! without it that test fails when `CI` is set and is skipped otherwise.
#![cfg(feature = "hub")]

mod common;

use std::{net::SocketAddr, time::Duration};

use axum::{
    extract::{Query, State},
    routing::{get, post},
    Router,
};
use bytes::Bytes;
#[cfg(feature = "redis")]
use common::redis_url;
use common::{fetch, read_until, request, serve};
use futures_util::StreamExt;
use http::{Request, StatusCode};
use http_body_util::Empty;

use axum_sse::{
    broadcast::Broadcast,
    hub::{Authorization, Hub, HubError, HubSubscription, TopicSelector, Update},
    EncodedEvent, LastEventId, SseBody, SseLayer,
};

// ---------------------------------------------------------------------------
// A test app: selectors and the test's own "tokens" in the query.
// ---------------------------------------------------------------------------

/// The authorization a test token stands for: `full`, `none`, `expired`,
/// or `read:<url pattern>` / `publish:<url pattern>`.
fn authorization(token: Option<&str>) -> Authorization {
    match token {
        None | Some("none") => Authorization::anonymous(),
        Some("full") => Authorization::full(),
        Some("expired") => Authorization::full().expires_in(Duration::ZERO),
        Some(other) => {
            let (action, pattern) = other.split_once(':').unwrap();
            let selector = TopicSelector::url_pattern(pattern).unwrap();
            match action {
                "read" => Authorization::anonymous().subscribe(selector),
                "publish" => Authorization::anonymous().publish(selector),
                _ => panic!("unknown token {other}"),
            }
        }
    }
}

fn pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `GET /events?exact=..&pattern=..&template=..&token=..`
async fn events(
    State(hub): State<Hub>,
    last_event_id: Option<LastEventId>,
    query: axum::extract::RawQuery,
) -> Result<SseBody<HubSubscription>, HubError> {
    let pairs = pairs(&query.0.unwrap_or_default());
    let mut selectors = Vec::new();
    for (name, value) in &pairs {
        selectors.push(match name.as_str() {
            "exact" => TopicSelector::try_exact(value)?,
            "pattern" => TopicSelector::url_pattern(value)?,
            "template" => TopicSelector::uri_template(value)?,
            _ => continue,
        });
    }
    let auth = authorization(first(&pairs, "token"));
    let last = last_event_id.as_ref().map(LastEventId::as_str);
    Ok(SseBody::new(hub.subscribe(selectors, auth, last).await?))
}

/// `POST /publish?topic=..&data=..&private&token=..`
async fn publish(
    State(hub): State<Hub>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<String, HubError> {
    let mut topics = pairs.iter().filter(|(k, _)| k == "topic").map(|(_, v)| v);
    let mut update = Update::new(topics.next().cloned().unwrap_or_default());
    for topic in topics {
        update = update.topic(topic.clone());
    }
    update = update
        .data(first(&pairs, "data").unwrap_or(""))
        .private(first(&pairs, "private").is_some());
    hub.publish(update, &authorization(first(&pairs, "token")))
        .await
}

fn app(hub: Hub) -> Router {
    Router::new()
        .route("/events", get(events))
        .route("/publish", post(publish))
        .with_state(hub)
        .layer(SseLayer::new())
}

/// Publishes as a trusted server.
async fn put(hub: &Hub, update: Update) -> String {
    hub.publish(update, &Authorization::full()).await.unwrap()
}

async fn open(addr: SocketAddr, query: &str, last: Option<&str>) -> hyper::body::Incoming {
    let mut req = Request::get(format!("/events?{query}"));
    if let Some(last) = last {
        req = req.header("last-event-id", last);
    }
    let response = request(addr, req.body(Empty::<Bytes>::new()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.into_body()
}

fn wire(data: &str, id: &str) -> String {
    format!("data: {data}\nid: {id}\n\n")
}

fn enc(query: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish()
}

#[test]
fn handles_and_streams_go_anywhere() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    fn assert_unpin<T: Unpin>() {}
    assert_send_sync::<Hub>();
    assert_send_sync::<HubSubscription>();
    assert_send_sync::<HubError>();
    assert_send_sync::<Authorization>();
    assert_send_sync::<TopicSelector>();
    assert_send_sync::<Update>();
    assert_unpin::<HubSubscription>();
}

// ---------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn selectors_pick_topics_and_an_update_of_several_topics_comes_once() {
    let hub = Hub::new(Broadcast::new());
    let addr = serve(app(hub.clone())).await;
    let query = enc(&[
        ("exact", "chat"),
        ("pattern", "https://example.com/books/:id"),
        ("template", "https://example.com/authors/{id}"),
        ("exact", "chat"), // a duplicate selector changes nothing
    ]);
    let mut body = open(addr, &query, None).await;

    let mut expected = String::new();
    for (topics, data, delivered) in [
        (&["chat"][..], "exact", true),
        (&["Chat"], "case differs", false),
        (&["https://example.com/books/1"], "pattern", true),
        (
            &["https://example.com/books/1/reviews"],
            "pattern too deep",
            false,
        ),
        (&["https://example.com/authors/ada"], "template", true),
        (
            &["https://example.com/authors/a/b"],
            "template too deep",
            false,
        ),
        (&["elsewhere"], "no match", false),
        // Matched by all three selectors, through three of its topics.
        (
            &[
                "elsewhere",
                "chat",
                "https://example.com/books/2",
                "https://example.com/authors/2",
            ],
            "several topics, once",
            true,
        ),
    ] {
        let mut update = Update::new(topics[0]).data(data);
        for topic in &topics[1..] {
            update = update.topic(*topic);
        }
        let id = put(&hub, update).await;
        if delivered {
            expected.push_str(&wire(data, &id));
        }
    }
    let end = put(&hub, Update::new("chat").data("end")).await;
    expected.push_str(&wire("end", &end));
    assert_eq!(read_until(&mut body, &wire("end", &end)).await, expected);
}

#[tokio::test]
async fn subscriptions_without_selectors_or_with_too_many_are_refused() {
    let hub = Hub::builder().max_selectors(3).build(Broadcast::new());
    let addr = serve(app(hub.clone())).await;
    let status =
        |query: String| async move { fetch(addr, &format!("/events?{query}")).await.status() };
    assert_eq!(status(String::new()).await, StatusCode::BAD_REQUEST);
    let four = enc(&[
        ("exact", "a"),
        ("exact", "b"),
        ("exact", "c"),
        ("exact", "d"),
    ]);
    assert_eq!(status(four).await, StatusCode::BAD_REQUEST);
    let three = enc(&[
        ("exact", "a"),
        ("exact", "b"),
        ("exact", "c"),
        ("exact", "a"),
    ]);
    assert_eq!(status(three).await, StatusCode::OK);
    let bad = enc(&[("pattern", "https://example.com/(")]);
    assert_eq!(status(bad).await, StatusCode::BAD_REQUEST);
    let control = enc(&[("exact", "a\u{200B}b")]);
    assert_eq!(status(control).await, StatusCode::BAD_REQUEST);
}

// ---------------------------------------------------------------------------
// Authorization
// ---------------------------------------------------------------------------

/// Public `p1`, private `s1` (topic `https://example.com/secret/1`), public
/// `p2`, private `s2`, public `p3`: the ids in order.
async fn public_and_private(hub: &Hub) -> Vec<String> {
    let mut ids = Vec::new();
    for (n, private) in [
        ("p1", false),
        ("SECRET-1", true),
        ("p2", false),
        ("SECRET-2", true),
        ("p3", false),
    ] {
        let topic = if private {
            "https://example.com/secret/1"
        } else {
            "https://example.com/public"
        };
        ids.push(put(hub, Update::new(topic).data(n).private(private)).await);
    }
    ids
}

#[tokio::test]
async fn private_updates_reach_only_authorized_subscribers_live_and_on_resume() {
    let hub = Hub::builder().build(Broadcast::new());
    let addr = serve(app(hub.clone())).await;
    let all = enc(&[("pattern", "https://example.com/*")]);
    let reader = enc(&[
        ("pattern", "https://example.com/*"),
        ("token", "read:https://example.com/secret/*"),
    ]);
    let other_reader = enc(&[
        ("pattern", "https://example.com/*"),
        ("token", "read:https://example.com/other/*"),
    ]);
    // Authorized to read, but not following the topic: nothing private.
    let not_following = enc(&[
        ("exact", "https://example.com/public"),
        ("token", "read:https://example.com/secret/*"),
    ]);
    let mut anonymous = open(addr, &all, None).await;
    let mut authorized = open(addr, &reader, None).await;
    let mut other = open(addr, &other_reader, None).await;
    let mut narrow = open(addr, &not_following, None).await;

    let ids = public_and_private(&hub).await;
    let public_only = [
        wire("p1", &ids[0]),
        wire("p2", &ids[2]),
        wire("p3", &ids[4]),
    ]
    .concat();
    let everything = [
        wire("p1", &ids[0]),
        wire("SECRET-1", &ids[1]),
        wire("p2", &ids[2]),
        wire("SECRET-2", &ids[3]),
        wire("p3", &ids[4]),
    ]
    .concat();
    let last = wire("p3", &ids[4]);
    assert_eq!(read_until(&mut anonymous, &last).await, public_only);
    assert_eq!(read_until(&mut other, &last).await, public_only);
    assert_eq!(read_until(&mut narrow, &last).await, public_only);
    assert_eq!(read_until(&mut authorized, &last).await, everything);

    // Resuming: a stolen id of a private update, a guessed one (the next
    // position of the log), `earliest`, a forged one. An unauthorized
    // subscriber gets byte for byte what its authorization lets it see.
    let guessed = {
        let (generation, position) = ids[0].rsplit_once('.').unwrap();
        format!("{generation}.{}", position.parse::<u64>().unwrap() + 1)
    };
    assert_eq!(
        guessed, ids[1],
        "the memory log's positions are consecutive"
    );
    for query in [&all, &other_reader, &not_following] {
        let cases = [
            (
                ids[1].as_str(),
                [wire("p2", &ids[2]), wire("p3", &ids[4])].concat(),
            ),
            (
                guessed.as_str(),
                [wire("p2", &ids[2]), wire("p3", &ids[4])].concat(),
            ),
            (ids[3].as_str(), wire("p3", &ids[4])),
            ("earliest", public_only.clone()),
            (
                "AAAAAAAAAAA.2",
                ["event: missed\ndata:\n\n", &public_only].concat(),
            ),
        ];
        for (last_id, expected) in cases {
            let mut body = open(addr, query, Some(last_id)).await;
            let received = read_until(&mut body, &last).await;
            assert_eq!(received, expected, "{query} from {last_id}");
            assert!(!received.contains("SECRET"));
            assert!(!received.contains("secret"));
            assert!(!received.contains(&ids[1]) && !received.contains(&ids[3]));
        }
    }
    // The authorized subscriber resumes into the private updates.
    let mut body = open(addr, &reader, Some(&ids[0])).await;
    let expected = everything.split_once("\n\n").unwrap().1;
    assert_eq!(read_until(&mut body, &last).await, expected);
}

#[tokio::test]
async fn a_private_update_is_read_through_any_of_its_topics() {
    let hub = Hub::new(Broadcast::new());
    let books = TopicSelector::url_pattern("https://example.com/books/:id").unwrap();
    let mine = Authorization::anonymous()
        .subscribe(TopicSelector::url_pattern("https://example.com/users/42/*").unwrap());
    let theirs = Authorization::anonymous()
        .subscribe(TopicSelector::url_pattern("https://example.com/users/43/*").unwrap());
    let mut user42 = hub.subscribe([books.clone()], mine, None).await.unwrap();
    let mut user43 = hub.subscribe([books.clone()], theirs, None).await.unwrap();
    let private = Update::new("https://example.com/books/1")
        .topic("https://example.com/users/42/books/1")
        .data("for 42")
        .private(true);
    let id = put(&hub, private).await;
    let public = put(&hub, Update::new("https://example.com/books/2").data("all")).await;
    assert_eq!(text(&next(&mut user42).await), wire("for 42", &id));
    assert_eq!(text(&next(&mut user42).await), wire("all", &public));
    assert_eq!(text(&next(&mut user43).await), wire("all", &public));
}

#[tokio::test]
async fn publishing_checks_its_authorization() {
    let hub = Hub::new(Broadcast::new());
    let addr = serve(app(hub.clone())).await;
    let post = |query: String| async move {
        let req = Request::post(format!("/publish?{query}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        request(addr, req).await.status()
    };
    let mut spy = hub
        .subscribe([TopicSelector::any()], Authorization::full(), None)
        .await
        .unwrap();
    let book = "https://example.com/books/1";
    let user = "https://example.com/users/1";
    let may_books = "publish:https://example.com/books/*";
    for (query, status) in [
        (enc(&[("topic", book)]), StatusCode::FORBIDDEN),
        (
            enc(&[("topic", book), ("token", "none")]),
            StatusCode::FORBIDDEN,
        ),
        (
            enc(&[("topic", book), ("token", "read:https://example.com/*")]),
            StatusCode::FORBIDDEN,
        ),
        // Every topic must be covered, alternates too.
        (
            enc(&[("topic", book), ("topic", user), ("token", may_books)]),
            StatusCode::FORBIDDEN,
        ),
        (
            enc(&[("topic", book), ("token", "expired")]),
            StatusCode::UNAUTHORIZED,
        ),
        (
            enc(&[("topic", "a\u{7f}"), ("token", "full")]),
            StatusCode::BAD_REQUEST,
        ),
        (
            enc(&[("topic", book), ("token", may_books), ("data", "ok")]),
            StatusCode::OK,
        ),
    ] {
        assert_eq!(post(query.clone()).await, status, "{query}");
    }
    // Only the allowed update was published.
    let only = next(&mut spy).await;
    assert!(text(&only).starts_with("data: ok\nid: "), "{}", text(&only));
    assert_eq!(hub.broadcast().stats().published(), 1);
}

#[test]
#[should_panic(expected = "no `data` field")]
fn an_expired_event_without_data_is_refused() {
    // `EventSource` would dispatch nothing for it, the `openai` SDKs an
    // empty event: the builder refuses it rather than let clients disagree.
    let _ = Hub::builder()
        .expired_event(axum_sse::Event::new().event("expired"))
        .build(Broadcast::new());
}

#[tokio::test(start_paused = true)]
async fn the_stream_ends_at_the_expiry_with_the_expired_event() {
    let hub = Hub::new(Broadcast::new());
    let start = tokio::time::Instant::now();
    let auth = Authorization::full().expires_at(start + Duration::from_secs(60));
    let mut sub = hub
        .subscribe([TopicSelector::any()], auth, None)
        .await
        .unwrap();
    let a = put(&hub, Update::new("t").data("a")).await;
    assert_eq!(text(&next(&mut sub).await), wire("a", &a));
    tokio::time::sleep(Duration::from_secs(59)).await;
    let b = put(&hub, Update::new("t").data("b")).await;
    assert_eq!(text(&next(&mut sub).await), wire("b", &b));
    // Nothing more before the expiry; at it, the expired event, then the end.
    let expired = sub.next().await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(60));
    assert_eq!(
        text(&expired),
        "event: expired\ndata: the authorization expired\n\n"
    );
    put(&hub, Update::new("t").data("late")).await;
    assert!(sub.next().await.is_none());

    // An update ready at the expiry is not delivered: the expiry comes first.
    let auth = Authorization::full().expires_in(Duration::from_secs(1));
    let mut sub = hub
        .subscribe([TopicSelector::any()], auth, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    put(&hub, Update::new("t").data("too late")).await;
    assert!(text(&sub.next().await.unwrap()).starts_with("event: expired"));
    assert!(sub.next().await.is_none());

    // Already expired: refused.
    let err = hub
        .subscribe(
            [TopicSelector::any()],
            Authorization::full().expires_in(Duration::ZERO),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_id_is_the_logs_whatever_the_number_of_topics() {
    let hub = Hub::builder()
        .max_selectors(1000)
        .max_topics(1000)
        .build(Broadcast::new());
    let many: Vec<TopicSelector> = (0..1000)
        .map(|n| TopicSelector::exact(format!("https://example.com/topics/{n}")))
        .collect();
    let mut one = hub
        .subscribe([many[0].clone()], Authorization::anonymous(), None)
        .await
        .unwrap();
    let mut thousand = hub
        .subscribe(many, Authorization::anonymous(), None)
        .await
        .unwrap();
    let mut update = Update::new("https://example.com/topics/0");
    for n in 1..1000 {
        update = update.topic(format!("https://example.com/topics/{n}"));
    }
    let id = put(&hub, update).await;
    assert!(id.len() <= 64, "{id}");
    let a = next(&mut one).await;
    let b = next(&mut thousand).await;
    assert_eq!(a, b);
    // Decoded once per process: both subscribers send the same bytes.
    assert!(std::ptr::eq(a.as_bytes(), b.as_bytes()));
    assert_eq!(text(&a), wire("", &id).replace("data: \n", "data:\n"));
    // Resuming a thousand-topic subscription takes that one id.
    let mut resumed = hub
        .subscribe(
            (0..1000).map(|n| TopicSelector::exact(format!("https://example.com/topics/{n}"))),
            Authorization::anonymous(),
            Some(&id),
        )
        .await
        .unwrap();
    assert!(!resumed.missed_events());
    let later = put(
        &hub,
        Update::new("https://example.com/topics/999").data("x"),
    )
    .await;
    assert_eq!(text(&next(&mut resumed).await), wire("x", &later));
}

#[tokio::test]
async fn a_publishers_id_is_the_events_id_and_resumes() {
    let hub = Hub::new(Broadcast::new());
    let addr = serve(app(hub.clone())).await;
    let all = enc(&[("pattern", "https://example.com/*")]);
    let mut body = open(addr, &all, None).await;
    let custom = "urn:uuid:e1ee88e2-532a-4d6f-ba70-f0f8bd584022";
    let update = || Update::new("https://example.com/a").data("mine").id(custom);
    assert_eq!(put(&hub, update()).await, custom);
    // A retry of the same id stores and sends nothing.
    assert_eq!(put(&hub, update()).await, custom);
    let private = Update::new("https://example.com/secret")
        .data("SECRET")
        .private(true)
        .id("urn:secret:1");
    assert_eq!(put(&hub, private).await, "urn:secret:1");
    let next_id = put(&hub, Update::new("https://example.com/b").data("after")).await;
    let expected = [wire("mine", custom), wire("after", &next_id)].concat();
    assert_eq!(
        read_until(&mut body, &wire("after", &next_id)).await,
        expected
    );
    // Resuming from the publisher's id, or from a stolen private one.
    for from in [custom, "urn:secret:1"] {
        let mut body = open(addr, &all, Some(from)).await;
        let received = read_until(&mut body, &wire("after", &next_id)).await;
        assert_eq!(received, wire("after", &next_id), "from {from}");
    }
    // Ids the log refuses are a 400.
    for bad in ["earliest", "caf\u{e9}", "a b"] {
        let err = hub
            .publish(Update::new("t").id(bad), &Authorization::full())
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn without_the_decode_cache_every_subscriber_decodes_the_same_bytes() {
    let hub = Hub::builder().decode_cache(0).build(Broadcast::new());
    let mut a = hub
        .subscribe([TopicSelector::any()], Authorization::anonymous(), None)
        .await
        .unwrap();
    let mut b = hub
        .subscribe([TopicSelector::any()], Authorization::anonymous(), None)
        .await
        .unwrap();
    let id = put(&hub, Update::new("t").data("x").event("e")).await;
    let (a, b) = (next(&mut a).await, next(&mut b).await);
    assert_eq!(text(&a), format!("event: e\ndata: x\nid: {id}\n\n"));
    assert_eq!(a, b);
    assert!(!std::ptr::eq(a.as_bytes(), b.as_bytes()));
}

// ---------------------------------------------------------------------------
// Many subscribers, many topics, random drops
// ---------------------------------------------------------------------------

fn text(event: &EncodedEvent) -> &str {
    std::str::from_utf8(event.as_bytes()).unwrap()
}

async fn next(sub: &mut HubSubscription) -> EncodedEvent {
    tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("no event within 20 s")
        .expect("the subscription ended")
}

fn id_of(event: &EncodedEvent) -> String {
    let text = text(event);
    let line = text.lines().find(|l| l.starts_with("id: ")).unwrap();
    line["id: ".len()..].to_owned()
}

fn data_of(event: &EncodedEvent) -> String {
    let text = text(event);
    let line = text.lines().find(|l| l.starts_with("data: ")).unwrap();
    line["data: ".len()..].to_owned()
}

const TOPICS: usize = 1000;
const SUBSCRIBERS: usize = 1000;
const PER_SUBSCRIBER: usize = 10;
const UPDATES: usize = 1000;

fn topic(n: usize) -> String {
    format!("https://example.com/t/{n}")
}

/// 1,000 subscribers each follow 10 random topics of 1,000 (plus `end`);
/// 1,000 updates of 1 to 3 random topics are published while they read;
/// each subscriber drops its stream after a random number of events (1 to
/// 3 times) and resumes from the last id it received. Each must receive
/// exactly the updates that match its topics, in publish order.
async fn many_topics_one_cursor(hub: Hub) {
    let mut expected_topics: Vec<Vec<usize>> = Vec::new();
    let mut tasks = Vec::new();
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let ready = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    for _ in 0..SUBSCRIBERS {
        let mut mine: Vec<usize> = Vec::new();
        while mine.len() < PER_SUBSCRIBER {
            let t = fastrand::usize(..TOPICS);
            if !mine.contains(&t) {
                mine.push(t);
            }
        }
        expected_topics.push(mine.clone());
        let hub = hub.clone();
        let mut go = go_rx.clone();
        let ready = ready.clone();
        tasks.push(tokio::spawn(async move {
            let selectors = || {
                mine.iter()
                    .map(|&t| TopicSelector::exact(topic(t)))
                    .chain([TopicSelector::exact("end")])
                    .collect::<Vec<_>>()
            };
            let mut sub = hub
                .subscribe(selectors(), Authorization::anonymous(), None)
                .await
                .unwrap();
            ready.add_permits(1);
            go.wait_for(|go| *go).await.unwrap();
            let mut received: Vec<String> = Vec::new();
            let mut last: Option<String> = None;
            let mut drops = 1 + fastrand::usize(..3);
            let mut until_drop = fastrand::usize(..30);
            loop {
                let event = tokio::time::timeout(Duration::from_secs(60), sub.next())
                    .await
                    .expect("no event within 60 s");
                let Some(event) = event else {
                    // Cut (a slow subscriber): resume, as a client does
                    // (from the start of the fresh log if nothing came yet).
                    let from = last.as_deref().unwrap_or("earliest");
                    sub = hub
                        .subscribe(selectors(), Authorization::anonymous(), Some(from))
                        .await
                        .unwrap();
                    assert!(!sub.missed_events());
                    continue;
                };
                let data = data_of(&event);
                last = Some(id_of(&event));
                if data == "end" {
                    return received;
                }
                received.push(data);
                if drops > 0 && until_drop == 0 {
                    drops -= 1;
                    until_drop = fastrand::usize(..30);
                    drop(sub);
                    sub = hub
                        .subscribe(selectors(), Authorization::anonymous(), last.as_deref())
                        .await
                        .unwrap();
                    assert!(!sub.missed_events());
                } else {
                    until_drop = until_drop.saturating_sub(1);
                }
            }
        }));
    }
    let _all = ready.acquire_many(SUBSCRIBERS as u32).await.unwrap();
    go_tx.send(true).unwrap();

    let mut published: Vec<(String, Vec<usize>)> = Vec::new();
    for n in 0..UPDATES {
        let count = 1 + fastrand::usize(..3);
        let topics: Vec<usize> = (0..count).map(|_| fastrand::usize(..TOPICS)).collect();
        let mut update = Update::new(topic(topics[0])).data(n.to_string());
        for &t in &topics[1..] {
            update = update.topic(topic(t));
        }
        put(&hub, update).await;
        published.push((n.to_string(), topics));
        if n % 100 == 0 {
            tokio::task::yield_now().await;
        }
    }
    put(&hub, Update::new("end").data("end")).await;

    let mut delivered = 0;
    for (task, mine) in tasks.into_iter().zip(expected_topics) {
        let received = task.await.unwrap();
        let expected: Vec<String> = published
            .iter()
            .filter(|(_, topics)| topics.iter().any(|t| mine.contains(t)))
            .map(|(data, _)| data.clone())
            .collect();
        assert_eq!(received, expected, "topics {mine:?}");
        delivered += received.len();
    }
    // About 1,000 × 2 × 10 / 1,000 = 20 each: the test moved real traffic.
    assert!(delivered > SUBSCRIBERS * 10, "{delivered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_topics_on_one_connection_resume_with_no_gap_and_no_duplicate_in_memory() {
    let log = Broadcast::builder()
        .history(UPDATES + 10)
        .buffer(UPDATES + 10)
        .build();
    many_topics_one_cursor(Hub::new(log)).await;
}

#[cfg(feature = "redis")]
async fn redis_log(url: &str, prefix: &str) -> Broadcast {
    // A buffer for the whole run: the drops are the test's own, not lag.
    Broadcast::builder()
        .history(UPDATES + 10)
        .buffer(UPDATES + 10)
        .key_prefix(prefix)
        .connect_redis(url)
        .await
        .unwrap()
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_topics_on_one_connection_resume_with_no_gap_and_no_duplicate_on_redis() {
    let Some(url) = redis_url() else { return };
    let prefix = format!("axum-sse-test:{:016x}:", fastrand::u64(..));
    many_topics_one_cursor(Hub::new(redis_log(&url, &prefix).await)).await;
}

/// Two instances over one Redis are one hub: an update published on one
/// reaches a subscriber of the other, private ones only if authorized,
/// and an id of one resumes on the other.
#[cfg(feature = "redis")]
#[tokio::test]
async fn two_instances_over_redis_are_one_hub() {
    let Some(url) = redis_url() else { return };
    let prefix = format!("axum-sse-test:{:016x}:", fastrand::u64(..));
    let a = Hub::new(redis_log(&url, &prefix).await);
    let b = Hub::new(redis_log(&url, &prefix).await);
    let all = || [TopicSelector::any()];
    let mut anonymous = b
        .subscribe(all(), Authorization::anonymous(), None)
        .await
        .unwrap();
    let reader = Authorization::anonymous().subscribe(TopicSelector::exact("s"));
    let mut authorized = b.subscribe(all(), reader.clone(), None).await.unwrap();
    let ids = [
        put(&a, Update::new("p").data("p1")).await,
        put(&a, Update::new("s").data("SECRET").private(true)).await,
        put(&a, Update::new("p").data("p2")).await,
    ];
    // The id bound holds on Redis too.
    assert!(ids.iter().all(|id| id.len() <= 64), "{ids:?}");
    assert_eq!(text(&next(&mut anonymous).await), wire("p1", &ids[0]));
    assert_eq!(text(&next(&mut anonymous).await), wire("p2", &ids[2]));
    assert_eq!(text(&next(&mut authorized).await), wire("p1", &ids[0]));
    assert_eq!(text(&next(&mut authorized).await), wire("SECRET", &ids[1]));
    // A stolen private id resumes on the other instance without the secret.
    let mut resumed = a
        .subscribe(all(), Authorization::anonymous(), Some(&ids[1]))
        .await
        .unwrap();
    assert!(!resumed.missed_events());
    assert_eq!(text(&next(&mut resumed).await), wire("p2", &ids[2]));
    let mut earliest = a.subscribe(all(), reader, Some("earliest")).await.unwrap();
    for (data, id) in [("p1", &ids[0]), ("SECRET", &ids[1]), ("p2", &ids[2])] {
        assert_eq!(text(&next(&mut earliest).await), wire(data, id));
    }
}
