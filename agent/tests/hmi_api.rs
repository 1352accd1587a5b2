//! The HMI API over real HTTP on 127.0.0.1:0: every route, the event stream, every kind of
//! bad request, the CLI's client and the `prompts` command as a real binary.
//!
//! The backend here is an in-memory stand-in, honest about what it is: a list of prompts and
//! settings behind a mutex. It exercises this layer (HTTP, JSON, errors, streaming); the
//! agent's core is tested against the same trait where it is implemented.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rapport_agent::hmi::{
    self, Backend, BackendError, Client, DriverAction, HmiError, HmiEvent, PromptView,
    QuietHoursView, Rejections, ServiceRequest, ServiceView, SettingsView, VehicleView,
};
use rapport_harness::http::client as http;
use serde_json::{Value, json};
use tokio::sync::{broadcast, oneshot};

/// Guard against a hang when something is broken; never a performance bound.
const PATIENCE: Duration = Duration::from_secs(10);

/// When the stand-in says "now" for a service without `at`.
const NOW_MS: u64 = 1_700_000_000_000;

struct State {
    prompts: Vec<PromptView>,
    settings: SettingsView,
    services: Vec<ServiceView>,
}

struct TestBackend {
    state: Mutex<State>,
    events: broadcast::Sender<HmiEvent>,
    store_down: AtomicBool,
}

impl TestBackend {
    fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                prompts: Vec::new(),
                settings: SettingsView {
                    engagement_prompts: true,
                    partner_sharing: false,
                    muted: Vec::new(),
                    quiet_hours: None,
                },
                services: Vec::new(),
            }),
            events: broadcast::channel(capacity).0,
            store_down: AtomicBool::new(false),
        })
    }

    /// A prompt appears on screen, as the core would announce it.
    fn show(&self, p: PromptView) {
        let mut st = self.state.lock().unwrap();
        st.prompts.retain(|q| q.id != p.id);
        st.prompts.push(p.clone());
        // No subscriber is fine.
        let _ = self.events.send(HmiEvent::Prompt(p));
    }
}

impl Backend for TestBackend {
    fn vehicle(&self) -> VehicleView {
        VehicleView {
            vin: "WVWZZZ1JZXW000001".into(),
            line: "golf".into(),
            category: "passenger".into(),
            odometer_km: Some(12_345.6),
            engine_hours: None,
            moving: false,
            parked: Some(true),
            mil: true,
            active_dtcs: vec![hmi::DtcView {
                code: "P0300".into(),
                severity: "critical".into(),
                first_seen_ms: 1,
                last_seen_ms: 2,
                times_seen: 1,
            }],
            maintenance: vec![hmi::MaintenanceView {
                item: "oil".into(),
                stage: "due_soon".into(),
                due_km: Some(15_000.0),
                due_date: Some("2027-01-01".into()),
                remaining_km: Some(2_654.4),
                remaining_days: Some(40),
            }],
            outbox_depth: 3,
        }
    }

    fn prompts(&self) -> Vec<PromptView> {
        let st = self.state.lock().unwrap();
        st.prompts
            .iter()
            .filter(|p| p.state == "shown")
            .cloned()
            .collect()
    }

    fn subscribe(&self) -> broadcast::Receiver<HmiEvent> {
        self.events.subscribe()
    }

    fn act(&self, id: &str, action: DriverAction) -> Result<PromptView, BackendError> {
        let mut st = self.state.lock().unwrap();
        let p = st
            .prompts
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or_else(|| BackendError::NotFound(format!("no prompt {id:?}")))?;
        if p.state != "shown" {
            return Err(BackendError::Conflict(format!(
                "prompt {id:?} is already {}",
                p.state
            )));
        }
        p.state = match action {
            DriverAction::Ack => "acknowledged",
            DriverAction::Snooze { .. } => "snoozed",
            DriverAction::Dismiss => "dismissed",
            DriverAction::Book => "booked",
        }
        .to_owned();
        let _ = self.events.send(HmiEvent::Closed {
            id: p.id.clone(),
            state: p.state.clone(),
        });
        Ok(p.clone())
    }

    fn record_service(&self, req: ServiceRequest) -> Result<ServiceView, BackendError> {
        if self.store_down.load(Ordering::SeqCst) {
            return Err(BackendError::Unavailable("store write failed".into()));
        }
        if let Some(item) = req
            .items
            .iter()
            .find(|i| !["oil", "air_filter", "brake_fluid"].contains(&i.as_str()))
        {
            return Err(BackendError::Invalid(format!(
                "items: {item:?} is not on this car's schedule"
            )));
        }
        let view = ServiceView {
            items: req.items,
            at_ms: req.at.map_or(NOW_MS, |t| t.as_millis()),
            odometer_km: req.odometer.map(|o| o.km()),
        };
        self.state.lock().unwrap().services.push(view.clone());
        Ok(view)
    }

    fn settings(&self) -> SettingsView {
        self.state.lock().unwrap().settings.clone()
    }

    fn put_settings(&self, s: SettingsView) -> Result<SettingsView, BackendError> {
        self.state.lock().unwrap().settings = s.clone();
        Ok(s)
    }
}

fn prompt(id: &str, title: &str) -> PromptView {
    PromptView {
        id: id.into(),
        kind: "maintenance".into(),
        subject: "oil".into(),
        critical: false,
        title: title.into(),
        text: "Book an oil change soon".into(),
        state: "shown".into(),
        created_ms: 1_000,
        first_shown_ms: Some(2_000),
    }
}

/// A stand-in with room for 16 events showing `shown`, and a server over it.
async fn serve_showing(shown: PromptView) -> (Arc<TestBackend>, Server) {
    let backend = TestBackend::new(16);
    backend.show(shown);
    let server = Server::start(backend.clone()).await;
    (backend, server)
}

/// GETs `url` and reads its JSON body.
async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> T {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// Sends `req` with `body` as JSON.
async fn send_json(
    req: reqwest::RequestBuilder,
    body: &impl serde::Serialize,
) -> reqwest::Response {
    req.json(body).send().await.unwrap()
}

struct Server {
    addr: SocketAddr,
    base: String,
    rejections: Arc<Rejections>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), rapport_agent::Error>>,
}

impl Server {
    async fn start(backend: Arc<TestBackend>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let rejections = Arc::new(Rejections::default());
        let router = hmi::router_with(backend, rejections.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(hmi::serve_router(listener, router, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            base: format!("http://{addr}"),
            rejections,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).unwrap();
        }
        tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("server stopped")
            .unwrap()
            .unwrap();
    }
}

/// Reads server-sent events from a response, independently of the crate's own parser.
struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    async fn open(url: &str) -> Self {
        let resp = http().get(url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// The next `(event, data)`, or `None` when the stream ended.
    async fn next(&mut self) -> Option<(String, String)> {
        tokio::time::timeout(PATIENCE, async {
            loop {
                if let Some(i) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..i + 2).collect();
                    let mut event = String::new();
                    let mut data = None;
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event: ") {
                            event = v.to_owned();
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data = Some(v.to_owned());
                        }
                    }
                    match data {
                        Some(d) => return Some((event, d)),
                        None => continue, // a keep-alive comment
                    }
                }
                match self.resp.chunk().await.unwrap() {
                    Some(c) => self.buf.push_str(std::str::from_utf8(&c).unwrap()),
                    None => return None,
                }
            }
        })
        .await
        .expect("an event or the end of the stream")
    }
}

#[tokio::test]
async fn every_route_answers_its_happy_path() {
    let (backend, server) =
        serve_showing(prompt("maintenance:oil:1:due_soon", "Oil change soon")).await;
    let http = http();

    let health: Value = get_json(&http, &server.url("/healthz")).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], rapport_agent::VERSION);

    let vehicle: VehicleView = get_json(&http, &server.url("/v1/vehicle")).await;
    assert_eq!(vehicle, backend.vehicle());

    let prompts: Vec<PromptView> = get_json(&http, &server.url("/v1/prompts")).await;
    assert_eq!(
        prompts,
        [prompt("maintenance:oil:1:due_soon", "Oil change soon")]
    );

    let resp = send_json(
        http.post(server.url("/v1/prompts/maintenance:oil:1:due_soon/action")),
        &json!({"action": "snooze", "minutes": 30}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let acted: PromptView = resp.json().await.unwrap();
    assert_eq!(acted.state, "snoozed");
    let prompts: Vec<Value> = get_json(&http, &server.url("/v1/prompts")).await;
    assert!(prompts.is_empty(), "a snoozed prompt leaves the screen");

    let resp = send_json(http.post(server.url("/v1/service")), &json!({"items": ["oil", "air_filter"], "odometer_km": 12_000.5, "at": 1_650_000_000_000u64})).await;
    assert_eq!(resp.status(), 201);
    let service: ServiceView = resp.json().await.unwrap();
    assert_eq!(
        service,
        ServiceView {
            items: vec!["oil".into(), "air_filter".into()],
            at_ms: 1_650_000_000_000,
            odometer_km: Some(12_000.5),
        }
    );
    let resp = send_json(
        http.post(server.url("/v1/service")),
        &json!({"items": ["brake_fluid"]}),
    )
    .await;
    let service: ServiceView = resp.json().await.unwrap();
    assert_eq!((service.at_ms, service.odometer_km), (NOW_MS, None));

    let settings: SettingsView = get_json(&http, &server.url("/v1/settings")).await;
    assert!(settings.engagement_prompts);
    let wanted = SettingsView {
        engagement_prompts: false,
        partner_sharing: true,
        muted: vec!["milestone".into()],
        quiet_hours: Some(QuietHoursView {
            start: "22:00".into(),
            end: "07:00".into(),
        }),
    };
    let resp = send_json(http.put(server.url("/v1/settings")), &wanted).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<SettingsView>().await.unwrap(), wanted);
    assert_eq!(backend.settings(), wanted);
    // quiet_hours may be left out: none.
    let resp = send_json(
        http.put(server.url("/v1/settings")),
        &json!({"engagement_prompts": true, "partner_sharing": false, "muted": []}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(backend.settings().quiet_hours, None);

    assert_eq!(server.rejections.client_errors(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn event_stream_sends_the_screen_then_live_prompts_and_closes() {
    let (backend, server) = serve_showing(prompt("a", "Already there")).await;
    let mut sse = SseReader::open(&server.url("/v1/prompts/stream")).await;

    let (event, data) = sse.next().await.unwrap();
    assert_eq!(event, "prompt");
    assert_eq!(
        serde_json::from_str::<PromptView>(&data).unwrap().id,
        "a",
        "the snapshot comes first"
    );

    backend.show(prompt("fault:P0300:1", "Misfire"));
    let (event, data) = sse.next().await.unwrap();
    assert_eq!(event, "prompt");
    assert_eq!(
        serde_json::from_str::<PromptView>(&data).unwrap(),
        prompt("fault:P0300:1", "Misfire")
    );

    backend.act("a", DriverAction::Dismiss).unwrap();
    let (event, data) = sse.next().await.unwrap();
    assert_eq!(event, "closed");
    assert_eq!(
        serde_json::from_str::<Value>(&data).unwrap(),
        json!({"id": "a", "state": "dismissed"})
    );

    // Shutting the server down ends the stream instead of waiting on it forever.
    server.shutdown().await;
    assert_eq!(sse.next().await, None);
}

#[tokio::test]
async fn a_lagging_stream_gets_resync_and_carries_on() {
    let backend = TestBackend::new(4);
    let server = Server::start(backend.clone()).await;
    let mut sse = SseReader::open(&server.url("/v1/prompts/stream")).await;
    // On this single-threaded runtime the server does not run between these sends: the
    // stream's receiver falls 16 events behind a channel that keeps 4.
    for i in 0..20 {
        backend.show(prompt(&format!("p{i}"), "burst"));
    }
    let (event, data) = sse.next().await.unwrap();
    assert_eq!((event.as_str(), data.as_str()), ("resync", "{}"));
    let mut ids = Vec::new();
    for _ in 0..4 {
        let (event, data) = sse.next().await.unwrap();
        assert_eq!(event, "prompt");
        ids.push(serde_json::from_str::<PromptView>(&data).unwrap().id);
    }
    assert_eq!(ids, ["p16", "p17", "p18", "p19"]);
    // And it is still live.
    backend.show(prompt("after", "after"));
    assert_eq!(sse.next().await.unwrap().0, "prompt");
    server.shutdown().await;
}

struct Bad {
    method: reqwest::Method,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    /// A piece of the message that says where.
    says: &'static str,
}

fn bad(
    method: &str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
    says: &'static str,
) -> Bad {
    Bad {
        method: method.parse().unwrap(),
        path,
        content_type,
        body: body.into(),
        status,
        code,
        says,
    }
}

#[tokio::test]
async fn every_bad_request_gets_its_status_and_a_json_error() {
    let backend = TestBackend::new(16);
    backend.show(prompt("open", "Open"));
    backend.show(prompt("closed", "Closed"));
    backend.act("closed", DriverAction::Ack).unwrap();
    let server = Server::start(backend.clone()).await;
    let json_ct = Some("application/json");
    let act = "/v1/prompts/open/action";
    let cases = [
        bad(
            "POST",
            act,
            json_ct,
            r#"{"action": "ack",}"#,
            400,
            "malformed_json",
            "line 1 column 18",
        ),
        bad(
            "POST",
            act,
            json_ct,
            "{\"action\":\n\"ack\"",
            400,
            "malformed_json",
            "line 2",
        ),
        bad("POST", act, json_ct, "", 400, "malformed_json", "EOF"),
        bad(
            "POST",
            act,
            None,
            r#"{"action":"ack"}"#,
            415,
            "unsupported_media_type",
            "no Content-Type",
        ),
        bad(
            "POST",
            act,
            Some("text/plain"),
            r#"{"action":"ack"}"#,
            415,
            "unsupported_media_type",
            "text/plain",
        ),
        bad(
            "POST",
            act,
            json_ct,
            r#"{"action":"explode"}"#,
            422,
            "unknown_action",
            "explode",
        ),
        bad(
            "POST",
            act,
            json_ct,
            r#"{"action":"snooze"}"#,
            422,
            "minutes_required",
            "minutes",
        ),
        bad(
            "POST",
            act,
            json_ct,
            r#"{"action":"snooze","minutes":0}"#,
            422,
            "minutes_out_of_range",
            "got 0",
        ),
        bad(
            "POST",
            act,
            json_ct,
            r#"{"action":"snooze","minutes":10081}"#,
            422,
            "minutes_out_of_range",
            "10081",
        ),
        bad(
            "POST",
            act,
            json_ct,
            r#"{"action":"snooze","minutes":2.5}"#,
            422,
            "minutes_out_of_range",
            "2.5",
        ),
        bad(
            "POST",
            act,
            json_ct,
            r#"{"action":"ack","minutes":5}"#,
            422,
            "minutes_not_allowed",
            "ack",
        ),
        bad(
            "POST",
            act,
            json_ct,
            r#"{"minutes":5}"#,
            422,
            "invalid_body",
            "missing field `action`",
        ),
        bad(
            "POST",
            act,
            json_ct,
            r#"{"action":"ack","why":1}"#,
            422,
            "invalid_body",
            "unknown field `why`",
        ),
        bad(
            "POST",
            act,
            json_ct,
            r#"{"action":7}"#,
            422,
            "invalid_body",
            "line 1 column",
        ),
        bad(
            "POST",
            act,
            json_ct,
            format!(r#"{{"action":"ack","pad":"{}"}}"#, "x".repeat(20_000)),
            413,
            "body_too_large",
            "16384",
        ),
        bad(
            "POST",
            "/v1/prompts/nope/action",
            json_ct,
            r#"{"action":"ack"}"#,
            404,
            "not_found",
            "nope",
        ),
        bad(
            "POST",
            "/v1/prompts/closed/action",
            json_ct,
            r#"{"action":"dismiss"}"#,
            409,
            "conflict",
            "acknowledged",
        ),
        bad(
            "POST",
            "/v1/prompts/%FF/action",
            json_ct,
            r#"{"action":"ack"}"#,
            400,
            "invalid_path",
            "prompt id",
        ),
        bad(
            "GET",
            "/v2/prompts",
            None,
            "",
            404,
            "unknown_route",
            "GET /v2/prompts",
        ),
        bad("GET", "/", None, "", 404, "unknown_route", "GET /"),
        bad(
            "DELETE",
            "/v1/prompts",
            None,
            "",
            405,
            "method_not_allowed",
            "/v1/prompts",
        ),
        bad("GET", act, None, "", 405, "method_not_allowed", "GET"),
        bad(
            "POST",
            "/v1/service",
            json_ct,
            r#"{"items":[]}"#,
            422,
            "invalid_service",
            "items",
        ),
        bad(
            "POST",
            "/v1/service",
            json_ct,
            r#"{"items":["oil"],"odometer_km":-3}"#,
            422,
            "invalid_service",
            "odometer_km",
        ),
        bad(
            "POST",
            "/v1/service",
            json_ct,
            r#"{"items":["oil"],"at":-1}"#,
            422,
            "invalid_body",
            "at line",
        ),
        bad(
            "POST",
            "/v1/service",
            json_ct,
            r#"{"items":["turbo_encabulator"]}"#,
            422,
            "invalid",
            "turbo_encabulator",
        ),
        bad(
            "PUT",
            "/v1/settings",
            json_ct,
            r#"{"engagement_prompts":true,"partner_sharing":false,"muted":["fault"],"quiet_hours":{"start":"22:00","end":"7:00"}}"#,
            422,
            "invalid_settings",
            "quiet_hours.end",
        ),
        bad(
            "PUT",
            "/v1/settings",
            json_ct,
            r#"{"engagement_prompts":true,"partner_sharing":false,"muted":["spam"]}"#,
            422,
            "invalid_settings",
            "muted[0]",
        ),
        bad(
            "PUT",
            "/v1/settings",
            json_ct,
            r#"{"engagement_prompts":true}"#,
            422,
            "invalid_body",
            "missing field",
        ),
    ];
    let http = http();
    for case in &cases {
        let mut req = http
            .request(case.method.clone(), server.url(case.path))
            .body(case.body.clone());
        if let Some(ct) = case.content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.unwrap();
        let what = format!("{} {} {:?}", case.method, case.path, case.code);
        assert_eq!(resp.status().as_u16(), case.status, "{what}");
        if case.status == 405 {
            assert!(resp.headers().contains_key("allow"), "{what}: Allow header");
        }
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "application/json",
            "{what}"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], case.code, "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(case.says),
            "{what}: {message:?} lacks {:?}",
            case.says
        );
    }
    // Nothing was changed by any of them.
    assert_eq!(backend.prompts(), [prompt("open", "Open")]);
    assert!(backend.state.lock().unwrap().services.is_empty());
    assert_eq!(backend.settings().muted, Vec::<String>::new());
    assert_eq!(server.rejections.client_errors(), cases.len() as u64);
    assert_eq!(server.rejections.server_errors(), 0);

    // The backend failing is a 503, counted as such.
    backend.store_down.store(true, Ordering::SeqCst);
    let resp = send_json(
        http.post(server.url("/v1/service")),
        &json!({"items": ["oil"]}),
    )
    .await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    assert_eq!(server.rejections.server_errors(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn the_cli_client_lists_acts_and_watches() {
    let (backend, server) = serve_showing(prompt("maintenance:oil:1:due", "Oil change due")).await;
    let client = Client::new(server.addr).unwrap();

    let listed = client.prompts().await.unwrap();
    assert_eq!(listed, backend.prompts());
    let mut out = Vec::new();
    hmi::cli::list(&client, false, &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("maintenance:oil:1:due  maintenance  shown  no"),
        "{text}"
    );

    // The watch sees the screen, then what happens next.
    let mut watch = client.watch().await.unwrap();
    assert_eq!(
        watch.next().await.unwrap(),
        Some(HmiEvent::Prompt(prompt(
            "maintenance:oil:1:due",
            "Oil change due"
        )))
    );
    let acted = client
        .act("maintenance:oil:1:due", DriverAction::Book)
        .await
        .unwrap();
    assert_eq!(acted.state, "booked");
    assert_eq!(
        watch.next().await.unwrap(),
        Some(HmiEvent::Closed {
            id: "maintenance:oil:1:due".into(),
            state: "booked".into()
        })
    );
    match client.act("maintenance:oil:1:due", DriverAction::Ack).await {
        Err(HmiError::Api { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (409, "conflict"))
        }
        other => panic!("acting twice: {other:?}"),
    }

    // An id with characters that must be escaped reaches the backend intact.
    backend.show(prompt("campaign:spring sale/2027?", "Spring"));
    let acted = client
        .act("campaign:spring sale/2027?", DriverAction::Ack)
        .await
        .unwrap();
    assert_eq!(acted.id, "campaign:spring sale/2027?");

    // The command's watch prints one line per event and stops at --count.
    let watching = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut out = Vec::new();
            hmi::cli::watch(&client, Some(1), true, &mut out)
                .await
                .unwrap();
            String::from_utf8(out).unwrap()
        })
    };
    // Nothing is on screen, so the one event is this one, whenever the watch subscribed.
    let shown = prompt("fault:P0300:1", "Misfire");
    let mut printed = None;
    for _ in 0..100 {
        backend.show(shown.clone());
        tokio::task::yield_now().await;
        if watching.is_finished() {
            printed = Some(watching.await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let printed = printed.expect("watch printed an event");
    let line: Value = serde_json::from_str(printed.trim_end()).unwrap();
    assert_eq!(line["event"], "prompt");
    assert_eq!(line["data"]["id"], "fault:P0300:1");
    assert_eq!(printed.lines().count(), 1);

    server.shutdown().await;
    // No agent listening is a connection error. Not asked of the stopped server's port: under
    // load another test's listener can take that port at once (it failed so once). A socket
    // bound but never listening holds a port nobody else can bind, and refuses connections.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let nobody = Client::new(closed.local_addr().unwrap()).unwrap();
    assert!(matches!(
        nobody.prompts().await,
        Err(HmiError::Connect { .. })
    ));
}

/// Runs `rapport-agent prompts ARGS` to its end.
async fn prompts_command<S: AsRef<std::ffi::OsStr>>(
    args: impl IntoIterator<Item = S>,
) -> std::process::Output {
    let mut cmd = rapport_harness::process::bin_command(env!("CARGO_BIN_EXE_rapport-agent"));
    cmd.arg("prompts").args(args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// Asserts that a command exited 0, showing its stderr if not.
fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_prompts_command_talks_to_a_running_agent() {
    let (backend, server) = serve_showing(prompt("maintenance:oil:1:due", "Oil change due")).await;
    let hmi = server.addr.to_string();

    let out = prompts_command(["--hmi", &hmi]).await;
    assert_success(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        "ID                     KIND         STATE  CRITICAL  TITLE\n\
         maintenance:oil:1:due  maintenance  shown  no        Oil change due\n"
    );

    // The address from the config's [hmi] section, JSON out.
    let dir = std::env::temp_dir().join(format!("rapport-hmi-{}", std::process::id()));
    let mut c = rapport_harness::agent::passenger().unwrap();
    c.hmi.listen = server.addr;
    let config = rapport_harness::agent::write(&c, &dir).unwrap();
    let out = prompts_command(["--json".as_ref(), "--config".as_ref(), config.as_os_str()]).await;
    assert_success(&out);
    let listed: Vec<PromptView> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed, backend.prompts());

    // Acting on an unknown prompt fails with the API's code, and exit 1.
    let out = prompts_command(["act", "nope", "ack", "--hmi", &hmi]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("404 not_found"), "{err}");

    // And on a real one it works; --minutes is checked before anything is sent.
    let snooze = ["act", "maintenance:oil:1:due", "snooze"];
    let out = prompts_command(snooze.iter().chain(&["--hmi", &hmi])).await;
    assert_eq!(out.status.code(), Some(2));
    let out = prompts_command(snooze.iter().chain(&["--minutes", "60", "--hmi", &hmi])).await;
    assert_success(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "maintenance:oil:1:due: snoozed\n"
    );
    assert!(backend.prompts().is_empty());

    server.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The routes `router_with` adds, read from its source (an axum router cannot be listed):
/// `(METHOD, path)`.
fn routes_in_source() -> std::collections::BTreeSet<(String, String)> {
    let source = include_str!("../src/hmi/server.rs");
    let start = source.find("pub fn router_with").unwrap();
    let body = &source[start..start + source[start..].find("\n}\n").unwrap()];
    let mut out = std::collections::BTreeSet::new();
    for line in body.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix(".route(") else {
            continue;
        };
        let (path, handlers) = rest.split_once(", ").unwrap();
        let path = path.trim_matches('"').to_owned();
        for method in ["get", "post", "put", "delete", "patch"] {
            let call = format!("{method}(");
            if handlers.starts_with(&call) || handlers.contains(&format!(".{call}")) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// The OpenAPI document (docs/api.md) is served as committed, is OpenAPI 3.1, documents every
/// route `router_with` adds and nothing else, and every documented operation is served,
/// answering a status it documents (an error in the stable shape).
#[tokio::test]
async fn every_route_is_documented_and_every_operation_served() {
    let (_backend, server) = serve_showing(prompt("maintenance:oil:1:due", "Oil")).await;
    let client = http();
    let resp = client
        .get(server.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(hmi::openapi::DOCUMENT).unwrap()
    );
    assert_eq!(doc["openapi"], "3.1.0");

    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_some() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let served = routes_in_source();
    assert!(served.len() >= 9, "{served:?}");
    assert_eq!(
        documented, served,
        "the document and the router's routes differ: annotate the handler with \
         #[utoipa::path], list it in server::Operations and regenerate openapi.json"
    );

    for (method, path) in &documented {
        let url = server.url(&path.replace("{id}", "maintenance:oil:1:due"));
        let req = client.request(method.parse().unwrap(), url);
        let req = if method == "GET" {
            req
        } else {
            req.header("content-type", "application/json").body("{}")
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let op = &doc["paths"][path][method.to_lowercase()];
        assert!(
            op["responses"].get(status.to_string()).is_some(),
            "{method} {path} answered {status}, which its operation does not document"
        );
        if status >= 400 {
            let json: Value = resp.json().await.unwrap();
            let code = json["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(
                code != "unknown_route" && code != "method_not_allowed",
                "{method} {path}: not served ({json})"
            );
        }
    }
    server.shutdown().await;
}
