//! The server through its HTTP application (`tower::ServiceExt::oneshot`, no socket): CRUD, every
//! error code a client can provoke, invocations against the fixtures' expected answers, variant
//! routing, full queues, updates under load with a rollback, and recovery after a restart.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use riskserve_server::{ServerConfig, Service, router};
use riskserve_store::EndpointStatus;
use serde_json::{Value, json};
use tower::ServiceExt;

// ---- scaffolding ----

/// The administrator's bearer token of every test server (`RISKSERVE_ADMIN_TOKEN`).
const ADMIN_TOKEN: &str = "rsk_test-admin-token-0123456789abcdef";

/// A scratch data directory removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("riskserve-server-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Scratch(path)
    }

    fn config(&self) -> ServerConfig {
        let mut config =
            ServerConfig { data_dir: self.0.clone(), max_body_bytes: 256 * 1024, ..ServerConfig::default() };
        config.auth.bootstrap.token = Some(ADMIN_TOKEN.to_string());
        config
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts an error answer: its status and stable code; returns the message.
    fn expect_error(&self, status: StatusCode, code: &str) -> String {
        assert_eq!(self.status, status, "{}", self.text());
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        let message = body["error"]["message"].as_str().expect("a message").to_string();
        assert!(!message.is_empty() && !message.ends_with('.'), "{message:?}");
        message
    }

    fn variant(&self) -> String {
        self.headers
            .get("x-amzn-invoked-production-variant")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_string()
    }
}

async fn call(app: &Router, method: Method, uri: &str, headers: &[(&str, &str)], body: impl Into<Body>) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    // Every call authenticates as the administrator unless it brings its own credentials.
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("authorization")) {
        request = request.header("authorization", format!("Bearer {ADMIN_TOKEN}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app.clone().oneshot(request.body(body.into()).expect("a request")).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("a body").to_vec();
    Answer { status, headers, body }
}

async fn post_json(app: &Router, uri: &str, body: Value) -> Answer {
    call(app, Method::POST, uri, &[("content-type", "application/json")], body.to_string()).await
}

async fn get(app: &Router, uri: &str) -> Answer {
    call(app, Method::GET, uri, &[], Body::empty()).await
}

async fn invoke_csv(app: &Router, endpoint: &str, body: &str, target: Option<&str>) -> Answer {
    let mut headers = vec![("content-type", "text/csv")];
    if let Some(target) = target {
        headers.push(("x-amzn-sagemaker-target-variant", target));
    }
    call(app, Method::POST, &format!("/endpoints/{endpoint}/invocations"), &headers, body.to_string()).await
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// A fixture case from `fixtures/manifest.json`: the model file, its input rows (with header)
/// and the library's expected answers.
struct Case {
    model: Vec<u8>,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    expected: Vec<Vec<f64>>,
}

fn case(name: &str) -> Case {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("manifest.json")).expect("manifest")).expect("JSON");
    let case = manifest["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|case| case["name"] == name)
        .unwrap_or_else(|| panic!("no fixture case {name}"));
    let path = |key: &str| fixtures().join(case[key].as_str().expect("a path"));
    let read_csv = |path: PathBuf| -> (Vec<String>, Vec<Vec<String>>) {
        let text = std::fs::read_to_string(&path).expect("a CSV");
        let mut lines = text.lines();
        let header = lines.next().expect("a header").split(',').map(str::to_string).collect();
        let rows = lines.map(|line| line.split(',').map(str::to_string).collect()).collect();
        (header, rows)
    };
    let (header, rows) = read_csv(path("input"));
    let (_, expected) = read_csv(path("expected"));
    let expected =
        expected.iter().map(|row| row.iter().map(|cell| cell.parse::<f64>().expect("a number")).collect()).collect();
    Case { model: std::fs::read(path("model")).expect("a model"), header, rows, expected }
}

impl Case {
    /// The rows as CSV in the order of `inputs` (the model's field order), no header.
    fn csv_for(&self, inputs: &[String], count: usize) -> String {
        let positions: Vec<usize> = inputs
            .iter()
            .map(|input| self.header.iter().position(|column| column == input).expect("the input column"))
            .collect();
        let mut body = String::new();
        for row in self.rows.iter().take(count) {
            let cells: Vec<&str> = positions.iter().map(|at| row[*at].as_str()).collect();
            body.push_str(&cells.join(","));
            body.push('\n');
        }
        body
    }
}

fn assert_close(found: f64, expected: f64, what: &str) {
    assert!((found - expected).abs() <= 1e-6 * expected.abs().max(1.0), "{what}: found {found}, expected {expected}");
}

/// Starts a service on a fresh data directory.
async fn start(scratch: &Scratch, config: ServerConfig) -> (Service, Router) {
    let _ = scratch;
    let service = Service::start(config).await.expect("the service starts");
    let app = router(service.clone());
    (service, app)
}

/// Uploads a model file and creates a model of it; returns the model's description.
async fn create_model(app: &Router, name: &str, bytes: Vec<u8>) -> Value {
    let uploaded =
        call(app, Method::PUT, "/api/v1/artifacts", &[("content-type", "application/octet-stream")], bytes).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.text());
    let digest = uploaded.json()["digest"].as_str().expect("a digest").to_string();
    let created = post_json(
        app,
        "/api/v1/models",
        json!({
            "name": name,
            "artifacts": [{"name": "model", "digest": digest}],
            "tags": {"team": "risk"},
            "description": "test model"
        }),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    created.json()
}

async fn create_config(app: &Router, name: &str, variants: Value) {
    let created = post_json(app, "/api/v1/endpoint-configs", json!({"name": name, "variants": variants})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
}

/// Polls an endpoint until its status is `want` (or it is gone, for `want == "gone"`).
async fn wait_for(app: &Router, endpoint: &str, want: &str) -> Value {
    for _ in 0..2000 {
        let answer = get(app, &format!("/api/v1/endpoints/{endpoint}")).await;
        if want == "gone" && answer.status == StatusCode::NOT_FOUND {
            return Value::Null;
        }
        if answer.status == StatusCode::OK {
            let body = answer.json();
            if body["status"] == want {
                return body;
            }
            assert!(
                !(body["status"] == "Failed" && want != "Failed"),
                "endpoint {endpoint} failed: {}",
                body["failure_reason"]
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("endpoint {endpoint} never became {want}");
}

async fn deploy(app: &Router, endpoint: &str, config: &str) -> Value {
    let created = post_json(app, "/api/v1/endpoints", json!({"name": endpoint, "config": config})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.json()["status"], "Creating");
    wait_for(app, endpoint, "InService").await
}

// ---- tests ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_routes_and_openapi_document() {
    let scratch = Scratch::new("health");
    let (_service, app) = start(&scratch, scratch.config()).await;
    let ping = get(&app, "/ping").await;
    assert_eq!(ping.status, StatusCode::OK);
    assert!(ping.body.is_empty());
    assert_eq!(get(&app, "/healthz").await.json(), json!({"status": "ok"}));
    let document = get(&app, "/api/v1/openapi.json").await.json();
    assert!(document["openapi"].as_str().expect("a version").starts_with('3'));
    for path in ["/api/v1/models", "/api/v1/endpoints/{name}", "/endpoints/{name}/invocations", "/api/v1/artifacts"] {
        assert!(document["paths"].get(path).is_some(), "{path} is not documented");
    }
    assert!(document["components"]["schemas"].get("Endpoint").is_some());
    // Every reference resolves to a schema of the document.
    fn references(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(members) => {
                for (key, member) in members {
                    match (key.as_str(), member) {
                        ("$ref", Value::String(target)) => found.push(target.clone()),
                        _ => references(member, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| references(item, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    references(&document, &mut found);
    assert!(!found.is_empty());
    for target in found {
        let name = target.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("odd reference {target}"));
        assert!(document["components"]["schemas"].get(name).is_some(), "{target} does not resolve");
    }
    get(&app, "/no/such/route").await.expect_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_are_created_listed_described_and_deleted() {
    let scratch = Scratch::new("crud");
    let (_service, app) = start(&scratch, scratch.config()).await;
    let fixture = case("xgb3_binary_logistic_json");

    // Uploads are content addressed and idempotent.
    let first = call(&app, Method::PUT, "/api/v1/artifacts", &[], fixture.model.clone()).await;
    let again = call(&app, Method::PUT, "/api/v1/artifacts", &[], fixture.model.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.json(), again.json());
    assert_eq!(first.json()["size"], fixture.model.len());

    let model = create_model(&app, "credit-xgb", fixture.model.clone()).await;
    assert_eq!(model["format"], "xgboost-json");
    assert_eq!(model["inputs"].as_array().expect("inputs").len(), fixture.header.len());
    assert_eq!(model["tags"]["team"], "risk");
    assert_eq!(model["artifacts"][0]["digest"], first.json()["digest"]);
    assert_eq!(get(&app, "/api/v1/models/credit-xgb").await.json(), model);

    // A model from a file URL: the server stores its own copy.
    let path = fixtures().join("xgb3/xgb3_binary_logistic.json").canonicalize().expect("a path");
    let from_url = post_json(
        &app,
        "/api/v1/models",
        json!({
            "name": "from-url", "artifact_url": format!("file://{}", path.display()), "format": "xgboost-json"
        }),
    )
    .await;
    assert_eq!(from_url.status, StatusCode::CREATED, "{}", from_url.text());
    assert_eq!(from_url.json()["artifacts"][0]["digest"], first.json()["digest"]);

    // Lists page in name order.
    for name in ["m-a", "m-b"] {
        create_model(&app, name, fixture.model.clone()).await;
    }
    let page = get(&app, "/api/v1/models?max_results=2").await.json();
    let names: Vec<&str> =
        page["items"].as_array().expect("items").iter().map(|m| m["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["credit-xgb", "from-url"]);
    let token = page["next_token"].as_str().expect("a next token");
    let rest = get(&app, &format!("/api/v1/models?max_results=2&next_token={token}")).await.json();
    assert_eq!(rest["items"].as_array().expect("items").len(), 2);
    assert_eq!(rest["next_token"], Value::Null);

    create_config(&app, "cfg", json!([{"name": "main", "model": "credit-xgb"}])).await;
    let config = get(&app, "/api/v1/endpoint-configs/cfg").await.json();
    assert_eq!(config["variants"], json!([{"name": "main", "model": "credit-xgb", "weight": 1.0, "instances": 1}]));
    assert_eq!(get(&app, "/api/v1/endpoint-configs").await.json()["items"].as_array().expect("items").len(), 1);

    let endpoint = deploy(&app, "credit", "cfg").await;
    assert_eq!(endpoint["config"], "cfg");
    assert_eq!(endpoint["variants"], config["variants"]);
    assert_eq!(endpoint["failure_reason"], Value::Null);
    assert_eq!(get(&app, "/api/v1/endpoints").await.json()["items"][0]["name"], "credit");

    // In-use resources cannot go; unused ones can.
    call(&app, Method::DELETE, "/api/v1/models/credit-xgb", &[], Body::empty())
        .await
        .expect_error(StatusCode::CONFLICT, "in_use");
    call(&app, Method::DELETE, "/api/v1/endpoint-configs/cfg", &[], Body::empty())
        .await
        .expect_error(StatusCode::CONFLICT, "in_use");
    assert_eq!(
        call(&app, Method::DELETE, "/api/v1/models/m-a", &[], Body::empty()).await.status,
        StatusCode::NO_CONTENT
    );

    let deleting = call(&app, Method::DELETE, "/api/v1/endpoints/credit", &[], Body::empty()).await;
    assert_eq!(deleting.status, StatusCode::ACCEPTED);
    assert_eq!(deleting.json()["status"], "Deleting");
    wait_for(&app, "credit", "gone").await;
    assert_eq!(
        call(&app, Method::DELETE, "/api/v1/endpoint-configs/cfg", &[], Body::empty()).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&app, Method::DELETE, "/api/v1/models/credit-xgb", &[], Body::empty()).await.status,
        StatusCode::NO_CONTENT
    );
    get(&app, "/api/v1/models/credit-xgb").await.expect_error(StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_error_code_names_the_problem() {
    let scratch = Scratch::new("errors");
    let (_service, app) = start(&scratch, scratch.config()).await;
    let fixture = case("xgb3_binary_logistic_json");
    let model = create_model(&app, "m", fixture.model.clone()).await;
    let digest = model["artifacts"][0]["digest"].as_str().expect("digest").to_string();

    // validation_error: names, malformed JSON (with its place), unknown members, bad variants.
    let message =
        post_json(&app, "/api/v1/models", json!({"name": "bad_name", "artifacts": [{"name": "m", "digest": digest}]}))
            .await
            .expect_error(StatusCode::BAD_REQUEST, "validation_error");
    assert!(message.contains("bad_name"), "{message}");
    post_json(&app, "/api/v1/models", json!({"name": "x".repeat(64), "artifacts": [{"name": "m", "digest": digest}]}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "validation_error");
    let message =
        call(&app, Method::POST, "/api/v1/models", &[("content-type", "application/json")], "{\"name\": \n  [")
            .await
            .expect_error(StatusCode::BAD_REQUEST, "validation_error");
    assert!(message.contains("line 2"), "{message}");
    let message = post_json(&app, "/api/v1/endpoint-configs", json!({"name": "c", "variants": [], "colour": 1}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "validation_error");
    assert!(message.contains("colour"), "{message}");
    post_json(
        &app,
        "/api/v1/endpoint-configs",
        json!({"name": "c", "variants": [
        {"name": "a", "model": "m"}, {"name": "a", "model": "m"}]}),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "validation_error");
    post_json(
        &app,
        "/api/v1/endpoint-configs",
        json!({"name": "c", "variants": [{"name": "a", "model": "m", "instances": 0}]}),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "validation_error");
    post_json(
        &app,
        "/api/v1/endpoint-configs",
        json!({"name": "c", "variants": [{"name": "a", "model": "m", "weight": 0.0}]}),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "validation_error");
    post_json(&app, "/api/v1/models", json!({"name": "n", "artifacts": [{"name": "m", "digest": "sha256:xyz"}]}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "validation_error");
    get(&app, "/api/v1/models?max_results=many").await.expect_error(StatusCode::BAD_REQUEST, "validation_error");

    // invalid_artifact: bytes that are no model, or a model of an unexpected format.
    let junk = call(&app, Method::PUT, "/api/v1/artifacts", &[], b"{\"not\": \"a model\"}".to_vec()).await.json();
    let message = post_json(
        &app,
        "/api/v1/models",
        json!({"name": "junk", "artifacts": [{"name": "j.json", "digest": junk["digest"]}]}),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "invalid_artifact");
    assert!(message.contains("j.json"), "{message}");
    post_json(
        &app,
        "/api/v1/models",
        json!({"name": "junk", "artifacts": [{"name": "m", "digest": digest}], "format": "pmml"}),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "invalid_artifact");
    let message =
        post_json(&app, "/api/v1/models", json!({"name": "junk", "artifact_url": "file:///no/such/model.json"}))
            .await
            .expect_error(StatusCode::BAD_REQUEST, "invalid_artifact");
    assert!(message.contains("/no/such/model.json"), "{message}");
    post_json(&app, "/api/v1/models", json!({"name": "junk", "artifact_url": "s3://bucket/model.json"}))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "validation_error");
    get(&app, "/api/v1/models/junk").await.expect_error(StatusCode::NOT_FOUND, "not_found");

    // not_found: references to what does not exist.
    let missing = format!("sha256:{}", "0".repeat(64));
    post_json(&app, "/api/v1/models", json!({"name": "n", "artifacts": [{"name": "m", "digest": missing}]}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    post_json(&app, "/api/v1/endpoint-configs", json!({"name": "c", "variants": [{"name": "a", "model": "nope"}]}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    post_json(&app, "/api/v1/endpoints", json!({"name": "e", "config": "nope"}))
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");
    invoke_csv(&app, "nope", "1\n", None).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    call(&app, Method::DELETE, "/api/v1/endpoints/nope", &[], Body::empty())
        .await
        .expect_error(StatusCode::NOT_FOUND, "not_found");

    // already_exists.
    post_json(&app, "/api/v1/models", json!({"name": "m", "artifacts": [{"name": "m", "digest": digest}]}))
        .await
        .expect_error(StatusCode::CONFLICT, "already_exists");
    create_config(&app, "c", json!([{"name": "a", "model": "m"}])).await;
    post_json(&app, "/api/v1/endpoint-configs", json!({"name": "c", "variants": [{"name": "a", "model": "m"}]}))
        .await
        .expect_error(StatusCode::CONFLICT, "already_exists");
    deploy(&app, "e", "c").await;
    post_json(&app, "/api/v1/endpoints", json!({"name": "e", "config": "c"}))
        .await
        .expect_error(StatusCode::CONFLICT, "already_exists");

    // unsupported_media_type.
    call(&app, Method::POST, "/api/v1/models", &[("content-type", "text/plain")], "{}")
        .await
        .expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    call(&app, Method::POST, "/endpoints/e/invocations", &[("content-type", "application/xml")], "<a/>")
        .await
        .expect_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");

    // payload_too_large: the test server's limit is 256 KiB.
    let huge = "1,".repeat(200_000);
    invoke_csv(&app, "e", &huge, None).await.expect_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // invalid_input: a row that fails the schema names its row and field.
    let inputs: Vec<String> =
        model["inputs"].as_array().expect("inputs").iter().map(|v| v.as_str().expect("name").to_string()).collect();
    let mut body = fixture.csv_for(&inputs, 2);
    let bad_row: Vec<&str> = (0..inputs.len()).map(|at| if at == 1 { "abc" } else { "1" }).collect();
    body.push_str(&bad_row.join(","));
    let message = invoke_csv(&app, "e", &body, None).await.expect_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert!(message.contains("row 3") && message.contains(&inputs[1]), "{message}");
    // A wrong field count is a malformed body.
    let message =
        invoke_csv(&app, "e", "1,2,3\n", None).await.expect_error(StatusCode::BAD_REQUEST, "validation_error");
    assert!(message.contains("line 1"), "{message}");
    // A variant the endpoint does not have.
    invoke_csv(&app, "e", &fixture.csv_for(&inputs, 1), Some("nope"))
        .await
        .expect_error(StatusCode::BAD_REQUEST, "validation_error");

    // in_use and invalid_state: an endpoint whose model went before it was created fails, and
    // neither answers invocations nor takes updates until it is fixed.
    create_model(&app, "short-lived", fixture.model.clone()).await;
    create_config(&app, "c-gone", json!([{"name": "a", "model": "short-lived"}])).await;
    assert_eq!(
        call(&app, Method::DELETE, "/api/v1/models/short-lived", &[], Body::empty()).await.status,
        StatusCode::NO_CONTENT
    );
    post_json(&app, "/api/v1/endpoints", json!({"name": "broken", "config": "c-gone"})).await;
    let failed = wait_for(&app, "broken", "Failed").await;
    assert!(failed["failure_reason"].as_str().expect("a reason").contains("short-lived"), "{failed}");
    invoke_csv(&app, "broken", &fixture.csv_for(&inputs, 1), None)
        .await
        .expect_error(StatusCode::CONFLICT, "invalid_state");
    call(&app, Method::DELETE, "/api/v1/endpoint-configs/c", &[], Body::empty())
        .await
        .expect_error(StatusCode::CONFLICT, "in_use");

    // The server still answers correctly after all of that.
    let answer = invoke_csv(&app, "e", &fixture.csv_for(&inputs, 1), None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_close(answer.text().trim().parse().expect("a number"), fixture.expected[0][0], "row 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_match_the_libraries_answers_in_csv_and_json() {
    let scratch = Scratch::new("invoke");
    let (_service, app) = start(&scratch, scratch.config()).await;
    for (case_name, endpoint) in [("xgb3_binary_logistic_json", "binary"), ("lgbm_multiclass", "multiclass")] {
        let fixture = case(case_name);
        let model = create_model(&app, endpoint, fixture.model.clone()).await;
        let inputs: Vec<String> =
            model["inputs"].as_array().expect("inputs").iter().map(|v| v.as_str().expect("name").to_string()).collect();
        create_config(&app, endpoint, json!([{"name": "only", "model": endpoint, "instances": 2}])).await;
        deploy(&app, endpoint, endpoint).await;
        let count = fixture.rows.len().min(200);

        let answer = invoke_csv(&app, endpoint, &fixture.csv_for(&inputs, count), None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(answer.headers["content-type"], "text/csv");
        assert_eq!(answer.variant(), "only");
        let text = answer.text();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        assert_eq!(lines.len(), count);
        for (index, line) in lines.iter().enumerate() {
            let values: Vec<f64> = line.split(',').map(|cell| cell.parse().expect("a number")).collect();
            assert_eq!(values.len(), fixture.expected[index].len(), "row {index}");
            for (found, expected) in values.iter().zip(&fixture.expected[index]) {
                assert_close(*found, *expected, &format!("{case_name} CSV row {index}"));
            }
        }

        // JSON, by position (numbers and nulls) and by field name (the same rows).
        let to_value =
            |cell: &str| if cell.is_empty() { Value::Null } else { json!(cell.parse::<f64>().expect("a number")) };
        let positional: Vec<Value> = fixture
            .csv_for(&inputs, count)
            .lines()
            .map(|line| Value::Array(line.split(',').map(to_value).collect()))
            .collect();
        let named: Vec<Value> = positional
            .iter()
            .map(|row| {
                let members: serde_json::Map<String, Value> =
                    inputs.iter().cloned().zip(row.as_array().expect("a row").iter().cloned()).collect();
                Value::Object(members)
            })
            .collect();
        for instances in [positional, named] {
            let answer = call(
                &app,
                Method::POST,
                &format!("/endpoints/{endpoint}/invocations"),
                &[("content-type", "application/json")],
                json!({"instances": instances}).to_string(),
            )
            .await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
            let predictions = answer.json()["predictions"].as_array().expect("predictions").clone();
            assert_eq!(predictions.len(), count);
            for (index, prediction) in predictions.iter().enumerate() {
                let values = prediction["values"].as_array().expect("values");
                for (found, expected) in values.iter().zip(&fixture.expected[index]) {
                    assert_close(
                        found.as_f64().expect("a number"),
                        *expected,
                        &format!("{case_name} JSON row {index}"),
                    );
                }
            }
        }
    }
    // The container contract's path needs exactly one endpoint; two serve here.
    call(&app, Method::POST, "/invocations", &[("content-type", "text/csv")], "1\n")
        .await
        .expect_error(StatusCode::BAD_REQUEST, "validation_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_follows_weights_and_the_target_variant_header() {
    let scratch = Scratch::new("routing");
    let (_service, app) = start(&scratch, scratch.config()).await;
    let fixture = case("xgb3_binary_logistic_json");
    let model = create_model(&app, "m", fixture.model.clone()).await;
    let inputs: Vec<String> =
        model["inputs"].as_array().expect("inputs").iter().map(|v| v.as_str().expect("name").to_string()).collect();
    let row = fixture.csv_for(&inputs, 1);
    create_config(
        &app,
        "split",
        json!([
            {"name": "heavy", "model": "m", "weight": 3.0},
            {"name": "light", "model": "m", "weight": 1.0},
            {"name": "dark", "model": "m", "weight": 0.0}
        ]),
    )
    .await;
    deploy(&app, "e", "split").await;

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..400 {
        let answer = invoke_csv(&app, "e", &row, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        *counts.entry(answer.variant()).or_default() += 1;
    }
    let heavy = counts.get("heavy").copied().unwrap_or(0);
    let light = counts.get("light").copied().unwrap_or(0);
    assert_eq!(heavy + light, 400, "{counts:?}");
    assert!(light > 0 && heavy > 2 * light, "{counts:?}");

    // The header reaches any variant, weight 0 included.
    for target in ["dark", "light", "heavy"] {
        for _ in 0..5 {
            assert_eq!(invoke_csv(&app, "e", &row, Some(target)).await.variant(), target);
        }
    }
    // Weights change in place: all traffic to the weight-0 variant, none to the others.
    for (variant, weight) in [("dark", 1.0), ("heavy", 0.0), ("light", 0.0)] {
        let changed = call(
            &app,
            Method::PATCH,
            &format!("/api/v1/endpoints/e/variants/{variant}"),
            &[("content-type", "application/json")],
            json!({"weight": weight}).to_string(),
        )
        .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    }
    let described = get(&app, "/api/v1/endpoints/e").await.json();
    let weights: Vec<f64> =
        described["variants"].as_array().expect("variants").iter().map(|v| v["weight"].as_f64().expect("w")).collect();
    assert_eq!(weights, [0.0, 0.0, 1.0]);
    for _ in 0..20 {
        assert_eq!(invoke_csv(&app, "e", &row, None).await.variant(), "dark");
    }
    let patch = |variant: &str, body: Value| {
        let app = app.clone();
        let uri = format!("/api/v1/endpoints/e/variants/{variant}");
        async move { call(&app, Method::PATCH, &uri, &[("content-type", "application/json")], body.to_string()).await }
    };
    patch("dark", json!({"weight": 0.0})).await.expect_error(StatusCode::BAD_REQUEST, "validation_error");
    patch("dark", json!({})).await.expect_error(StatusCode::BAD_REQUEST, "validation_error");
    patch("dark", json!({"instances": 0})).await.expect_error(StatusCode::BAD_REQUEST, "validation_error");
    patch("nope", json!({"weight": 1.0})).await.expect_error(StatusCode::NOT_FOUND, "not_found");
    let changed = patch("dark", json!({"instances": 2, "weight": 2.0})).await;
    assert_eq!(changed.json()["variants"][2], json!({"name": "dark", "model": "m", "weight": 2.0, "instances": 2}));

    // The only endpoint also answers on the container contract's path.
    let answer = call(&app, Method::POST, "/invocations", &[("content-type", "text/csv")], row.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queues_answer_503_with_retry_after_and_instances_change_at_run_time() {
    let scratch = Scratch::new("overload");
    let config = ServerConfig { queue_depth: 1, ..scratch.config() };
    let (service, app) = start(&scratch, config).await;
    let fixture = case("xgb3_binary_logistic_json");
    let model = create_model(&app, "m", fixture.model.clone()).await;
    let inputs: Vec<String> =
        model["inputs"].as_array().expect("inputs").iter().map(|v| v.as_str().expect("name").to_string()).collect();
    let row = fixture.csv_for(&inputs, 1);
    create_config(&app, "c", json!([{"name": "v", "model": "m", "instances": 1}])).await;
    deploy(&app, "e", "c").await;

    // With the worker held, at most two requests are accepted (one taken by the held worker, one
    // in its queue of 1); the others are refused at once.
    assert!(service.hold_workers("e", "v", true));
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (app, row) = (app.clone(), row.clone());
            tokio::spawn(async move { invoke_csv(&app, "e", &row, None).await })
        })
        .collect();
    while tasks.iter().filter(|task| task.is_finished()).count() < 4 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    service.hold_workers("e", "v", false);
    let mut accepted = 0;
    let mut refused = 0;
    for task in tasks {
        let answer = task.await.expect("the request task");
        if answer.status == StatusCode::OK {
            accepted += 1;
        } else {
            answer.expect_error(StatusCode::SERVICE_UNAVAILABLE, "overloaded");
            assert_eq!(answer.headers["retry-after"], "1");
            refused += 1;
        }
    }
    assert!(accepted <= 2 && refused >= 4, "accepted {accepted}, refused {refused}");

    // More instances: the change is live and recorded.
    service.set_instances("e", "v", 3).await.expect("set instances");
    assert_eq!(service.serving_instances("e", "v"), Some(3));
    assert_eq!(get(&app, "/api/v1/endpoints/e").await.json()["variants"][0]["instances"], 3);
    assert!(service.set_instances("e", "nope", 2).await.is_err());
    service.set_instances("e", "v", 1).await.expect("set instances");
    assert_eq!(service.serving_instances("e", "v"), Some(1));
    assert_eq!(invoke_csv(&app, "e", &row, None).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn updates_under_load_fail_no_request_and_a_failed_update_rolls_back() {
    let scratch = Scratch::new("update");
    let (_service, app) = start(&scratch, scratch.config()).await;
    let fixture = case("xgb3_binary_logistic_json");
    let model = create_model(&app, "m", fixture.model.clone()).await;
    let inputs: Vec<String> =
        model["inputs"].as_array().expect("inputs").iter().map(|v| v.as_str().expect("name").to_string()).collect();
    let rows = fixture.csv_for(&inputs, 5);
    create_model(&app, "m2", fixture.model.clone()).await;
    create_model(&app, "doomed", fixture.model.clone()).await;
    create_config(&app, "blue", json!([{"name": "blue", "model": "m", "instances": 2}])).await;
    create_config(&app, "green", json!([{"name": "green", "model": "m2", "instances": 3}])).await;
    create_config(&app, "broken", json!([{"name": "broken", "model": "doomed"}])).await;
    assert_eq!(
        call(&app, Method::DELETE, "/api/v1/models/doomed", &[], Body::empty()).await.status,
        StatusCode::NO_CONTENT
    );
    deploy(&app, "e", "blue").await;

    // Clients invoke without pause while the endpoint moves blue → green → blue → green → broken.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (app, rows, stop, served) = (app.clone(), rows.clone(), Arc::clone(&stop), Arc::clone(&served));
        let expected = fixture.expected.clone();
        clients.push(tokio::spawn(async move {
            let mut variants = HashMap::<String, usize>::new();
            while !stop.load(Ordering::Relaxed) {
                let answer = invoke_csv(&app, "e", &rows, None).await;
                assert_eq!(answer.status, StatusCode::OK, "a request failed during an update: {}", answer.text());
                let first: f64 = answer.text().lines().next().expect("a line").parse().expect("a number");
                assert_close(first, expected[0][0], "row 1 during the update");
                *variants.entry(answer.variant()).or_default() += 1;
                served.fetch_add(1, Ordering::Relaxed);
            }
            variants
        }));
    }
    for config in ["green", "blue", "green"] {
        let updating = call(
            &app,
            Method::PUT,
            "/api/v1/endpoints/e",
            &[("content-type", "application/json")],
            json!({"config": config}).to_string(),
        )
        .await;
        assert_eq!(updating.status, StatusCode::OK, "{}", updating.text());
        let body = wait_for(&app, "e", "InService").await;
        // InService can be read before the update began only if the status had not changed yet.
        if body["config"] != config {
            wait_for_config(&app, "e", config).await;
        }
        let before = served.load(Ordering::Relaxed);
        while served.load(Ordering::Relaxed) < before + 20 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
    let updating = call(
        &app,
        Method::PUT,
        "/api/v1/endpoints/e",
        &[("content-type", "application/json")],
        json!({"config": "broken"}).to_string(),
    )
    .await;
    assert_eq!(updating.status, StatusCode::OK);
    let rolled_back = wait_for_failure_reason(&app, "e").await;
    assert_eq!(rolled_back["status"], "InService");
    assert_eq!(rolled_back["config"], "green");
    assert!(rolled_back["failure_reason"].as_str().expect("a reason").contains("doomed"), "{rolled_back}");
    let before = served.load(Ordering::Relaxed);
    while served.load(Ordering::Relaxed) < before + 20 {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut variants = HashMap::<String, usize>::new();
    for client in clients {
        for (variant, count) in client.await.expect("a client") {
            *variants.entry(variant).or_default() += count;
        }
    }
    assert!(variants.contains_key("blue") && variants.contains_key("green"), "{variants:?}");
    assert!(!variants.contains_key("broken"), "{variants:?}");
    assert_eq!(get(&app, "/api/v1/endpoints/e").await.json()["variants"][0]["name"], "green");
}

async fn wait_for_config(app: &Router, endpoint: &str, config: &str) {
    for _ in 0..2000 {
        let body = get(app, &format!("/api/v1/endpoints/{endpoint}")).await.json();
        if body["status"] == "InService" && body["config"] == config {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("endpoint {endpoint} never served {config}");
}

async fn wait_for_failure_reason(app: &Router, endpoint: &str) -> Value {
    for _ in 0..2000 {
        let body = get(app, &format!("/api/v1/endpoints/{endpoint}")).await.json();
        if body["status"] == "InService" && !body["failure_reason"].is_null() {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("endpoint {endpoint} never rolled back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_serves_again_and_completes_or_rolls_back_what_was_in_flight() {
    let scratch = Scratch::new("recovery");
    let fixture = case("xgb3_binary_logistic_json");
    let inputs: Vec<String>;
    {
        let (service, app) = start(&scratch, scratch.config()).await;
        let model = create_model(&app, "m", fixture.model.clone()).await;
        inputs =
            model["inputs"].as_array().expect("inputs").iter().map(|v| v.as_str().expect("name").to_string()).collect();
        create_config(&app, "one", json!([{"name": "one", "model": "m"}])).await;
        create_config(&app, "two", json!([{"name": "two", "model": "m", "instances": 2}])).await;
        for endpoint in ["serving", "updating", "deleting", "rolling-back"] {
            deploy(&app, endpoint, "one").await;
        }
        // An endpoint whose model file will be damaged on disk while the server is down.
        create_model(&app, "fragile", case("xgb3_binary_logitraw_json").model).await;
        create_config(&app, "fragile", json!([{"name": "fragile", "model": "fragile"}])).await;
        deploy(&app, "fragile", "fragile").await;
        service.set_instances("serving", "one", 3).await.expect("instances");
        service.shutdown().await;
    }
    // What a kill -9 in the middle of requests leaves: accepted requests not yet carried out,
    // and an upload that never finished.
    {
        let store = riskserve_store::Store::open(&scratch.0).await.expect("the store");
        store.metadata.insert_endpoint("creating", "two", &BTreeMap::new()).await.expect("creating");
        store.metadata.begin_update("updating", "two").await.expect("updating");
        store.metadata.begin_delete("deleting").await.expect("deleting");
        let rolling = store.metadata.begin_update("rolling-back", "two").await.expect("updating");
        store.metadata.fail_deploy("rolling-back", rolling.generation, "it broke").await.expect("rolling back");
        assert_eq!(store.metadata.get_endpoint("rolling-back").await.expect("get").status, EndpointStatus::RollingBack);
        let fragile = store.metadata.get_model("fragile").await.expect("fragile").artifacts[0].digest.clone();
        let hex = fragile.trim_start_matches("sha256:");
        std::fs::write(scratch.0.join("artifacts/sha256").join(hex), b"damaged").expect("damage");
        store.metadata.close().await;
        std::fs::create_dir_all(scratch.0.join("artifacts/tmp")).expect("tmp");
        std::fs::write(scratch.0.join("artifacts/tmp/half-1-1"), b"half").expect("half");
    }
    let (_service, app) = start(&scratch, scratch.config()).await;
    let row = fixture.csv_for(&inputs, 1);
    // InService endpoints serve as soon as the server starts, with their instance counts.
    let answer = invoke_csv(&app, "serving", &row, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_close(answer.text().trim().parse().expect("a number"), fixture.expected[0][0], "after restart");
    assert_eq!(get(&app, "/api/v1/endpoints/serving").await.json()["variants"][0]["instances"], 3);
    // Accepted requests complete.
    assert_eq!(wait_for(&app, "creating", "InService").await["config"], "two");
    wait_for_config(&app, "updating", "two").await;
    assert_eq!(invoke_csv(&app, "updating", &row, None).await.variant(), "two");
    wait_for(&app, "deleting", "gone").await;
    // A rollback that was under way ends on the old config, with its reason.
    let rolled_back = get(&app, "/api/v1/endpoints/rolling-back").await.json();
    assert_eq!((&rolled_back["status"], &rolled_back["config"]), (&json!("InService"), &json!("one")));
    assert_eq!(rolled_back["failure_reason"], "it broke");
    assert_eq!(invoke_csv(&app, "rolling-back", &row, None).await.variant(), "one");
    // A damaged artifact is never served: that endpoint is Failed and says why.
    let fragile = get(&app, "/api/v1/endpoints/fragile").await.json();
    assert_eq!(fragile["status"], "Failed");
    assert!(fragile["failure_reason"].as_str().expect("a reason").contains("does not match its digest"), "{fragile}");
    assert!(!scratch.0.join("artifacts/tmp/half-1-1").exists());
    // Nothing was uploaded again: the two models' artifacts are all the store holds.
    assert_eq!(std::fs::read_dir(scratch.0.join("artifacts/sha256")).expect("artifacts").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_model_answers_as_its_libraries_with_explanations() {
    let scratch = Scratch::new("pipeline");
    let (_service, app) = start(&scratch, ServerConfig { max_body_bytes: 1 << 20, ..scratch.config() }).await;
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/german-credit/xgboost");
    let upload = |file: &str| {
        let bytes = std::fs::read(folder.join(file)).expect("an example file");
        let app = app.clone();
        async move { call(&app, Method::PUT, "/api/v1/artifacts", &[], bytes).await.json()["digest"].clone() }
    };
    let model_digest = upload("model.json").await;
    let spec_digest = upload("pipeline.json").await;

    // The spec names its model file: an artifact under another name is refused.
    let message = post_json(
        &app,
        "/api/v1/models",
        json!({
            "name": "gc", "artifacts": [{"name": "other.json", "digest": model_digest}], "pipeline": spec_digest
        }),
    )
    .await
    .expect_error(StatusCode::BAD_REQUEST, "invalid_artifact");
    assert!(message.contains("model.json"), "{message}");
    let created = post_json(
        &app,
        "/api/v1/models",
        json!({
            "name": "gc", "artifacts": [{"name": "model.json", "digest": model_digest}], "pipeline": spec_digest
        }),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let model = created.json();
    assert_eq!(model["format"], "pipeline");
    assert_eq!(model["outputs"], json!(["probability", "score", "grade", "decision"]));
    create_config(&app, "gc", json!([{"name": "only", "model": "gc"}])).await;
    deploy(&app, "gc", "gc").await;

    // The input file's rows (its header is the pipeline's field order) and the expected outcomes.
    let input = std::fs::read_to_string(folder.join("input.csv")).expect("input");
    let (header, body) = input.split_once('\n').expect("a header");
    let fields: Vec<String> =
        model["inputs"].as_array().expect("inputs").iter().map(|v| v.as_str().expect("name").to_string()).collect();
    assert_eq!(header.trim().split(',').collect::<Vec<_>>(), fields);
    let expected: Vec<Value> = std::fs::read_to_string(folder.join("expected.jsonl"))
        .expect("expected")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();

    let answer = invoke_csv(&app, "gc", body, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let text = answer.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), expected.len());
    for (line, expected) in lines.iter().zip(&expected) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells.len(), 4, "{line}");
        assert_close(
            cells[0].parse().expect("a probability"),
            expected["probability"].as_f64().expect("p"),
            "probability",
        );
        assert_close(cells[1].parse().expect("a score"), expected["score"].as_f64().expect("score"), "score");
        assert_eq!(cells[2], expected["grade"], "{line}");
        assert_eq!(cells[3], expected["decision"], "{line}");
    }

    // JSON by field name, with explanations asked by the SageMaker header.
    let instances: Vec<Value> = body
        .lines()
        .take(20)
        .map(|line| {
            let mut reader = csv_cells(line).into_iter();
            let members: serde_json::Map<String, Value> = fields
                .iter()
                .map(|field| {
                    let cell = reader.next().expect("a cell");
                    let value = if cell.is_empty() {
                        Value::Null
                    } else {
                        cell.parse::<f64>().map_or_else(|_| json!(cell), |number| json!(number))
                    };
                    (field.clone(), value)
                })
                .collect();
            Value::Object(members)
        })
        .collect();
    let answer = call(
        &app,
        Method::POST,
        "/endpoints/gc/invocations",
        &[("content-type", "application/json"), ("x-amzn-sagemaker-enable-explanations", "true")],
        json!({"instances": instances}).to_string(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    for (prediction, expected) in answer.json()["predictions"].as_array().expect("predictions").iter().zip(&expected) {
        assert_eq!(prediction["grade"], expected["grade"]);
        assert_eq!(prediction["decision"], expected["decision"]);
        for (feature, value) in expected["contributions"].as_object().expect("contributions") {
            let found =
                prediction["contributions"][feature].as_f64().unwrap_or_else(|| panic!("no contribution {feature}"));
            assert_close(found, value.as_f64().expect("a number"), feature);
        }
        let codes = |outcome: &Value| -> Vec<Value> {
            outcome["reasons"].as_array().expect("reasons").iter().map(|reason| reason["code"].clone()).collect()
        };
        assert_eq!(codes(prediction), codes(expected));
    }
}

/// Splits one CSV line, honouring double quotes.
fn csv_cells(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    for character in line.trim_end().chars() {
        match (character, quoted) {
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(String::new()),
            (other, _) => cells.last_mut().expect("a cell").push(other),
        }
    }
    cells
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scorecard_pipeline_with_required_fields_loads_and_answers() {
    let scratch = Scratch::new("scorecard");
    let (_service, app) = start(&scratch, ServerConfig { max_body_bytes: 1 << 20, ..scratch.config() }).await;
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/german-credit/scorecard");
    let mut digests = Vec::new();
    for file in ["scorecard.pmml", "pipeline.json"] {
        let bytes = std::fs::read(folder.join(file)).expect("an example file");
        digests.push(call(&app, Method::PUT, "/api/v1/artifacts", &[], bytes).await.json()["digest"].clone());
    }
    // Every field is required and range-checked: the smoke test has to use a row the schema allows.
    let created = post_json(
        &app,
        "/api/v1/models",
        json!({
            "name": "card", "artifacts": [{"name": "scorecard.pmml", "digest": digests[0]}], "pipeline": digests[1]
        }),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let outputs: Vec<String> = created.json()["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|name| name.as_str().expect("a name").to_string())
        .collect();
    create_config(&app, "card", json!([{"name": "only", "model": "card"}])).await;
    deploy(&app, "card", "card").await;

    let input = std::fs::read_to_string(folder.join("input.csv")).expect("input");
    let (_, body) = input.split_once('\n').expect("a header");
    let expected: Vec<Value> = std::fs::read_to_string(folder.join("expected.jsonl"))
        .expect("expected")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect();
    let answer = invoke_csv(&app, "card", body, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let text = answer.text();
    assert_eq!(text.lines().count(), expected.len());
    for (line, expected) in text.lines().zip(&expected) {
        for (cell, output) in line.split(',').zip(&outputs) {
            match &expected[output] {
                Value::Number(number) => {
                    assert_close(cell.parse().expect("a number"), number.as_f64().expect("f64"), output);
                }
                other => assert_eq!(cell, other.as_str().expect("text"), "{output}"),
            }
        }
    }
    // A row outside the schema is refused with its row and field.
    let mut cells: Vec<String> = csv_cells(body.lines().next().expect("a row"));
    cells[12] = "7".to_string();
    let quoted: Vec<String> = cells.iter().map(|cell| format!("\"{cell}\"")).collect();
    let message =
        invoke_csv(&app, "card", &quoted.join(","), None).await.expect_error(StatusCode::BAD_REQUEST, "invalid_input");
    assert!(message.contains("row 1") && message.contains("age_in_years"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_have_their_own_size_limit() {
    let scratch = Scratch::new("artifact-limit");
    let config = ServerConfig { max_body_bytes: 64 * 1024, max_artifact_bytes: 2 * 1024 * 1024, ..scratch.config() };
    let (_service, app) = start(&scratch, config).await;
    // A model file above the body limit uploads (1,000 trees, about 1.1 MB), and deploys.
    let model = std::fs::read(fixtures().join("xgb3/xgb3_1000_trees.ubj")).expect("the model");
    assert!(model.len() > 64 * 1024);
    create_model(&app, "big", model).await;
    create_config(&app, "big", json!([{"name": "only", "model": "big"}])).await;
    deploy(&app, "big", "big").await;
    // Above the artifact limit: 413, and the server goes on.
    call(&app, Method::PUT, "/api/v1/artifacts", &[], vec![b'x'; 3 * 1024 * 1024])
        .await
        .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let body = json!({"name": "n", "variants": [{"name": "v", "model": "big"}], "tags": {"pad": "x".repeat(100)}});
    let padded = format!("{}{}", " ".repeat(70 * 1024), body);
    call(&app, Method::POST, "/api/v1/endpoint-configs", &[("content-type", "application/json")], padded)
        .await
        .expect_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(get(&app, "/healthz").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_scorecard_whose_string_fields_refuse_zero_is_accepted_and_answers_as_jpmml() {
    // Its string fields list their categories and refuse a bare 0, so the check before a model
    // exists must try a row its declared inputs allow.
    let scratch = Scratch::new("scorecard-bare");
    let (_service, app) = start(&scratch, scratch.config()).await;
    let pmml = std::fs::read(fixtures().join("pmml/germancredit_points_below.pmml")).expect("the PMML fixture");
    let model = create_model(&app, "card", pmml).await;
    assert_eq!(model["format"], "pmml");
    create_config(&app, "card", json!([{"name": "only", "model": "card"}])).await;
    deploy(&app, "card", "card").await;

    let mut input = csv::Reader::from_path(fixtures().join("pmml/germancredit.input.csv")).expect("the input");
    let header: Vec<String> = input.headers().expect("a header").iter().map(str::to_string).collect();
    let mut expected = csv::Reader::from_path(fixtures().join("pmml/germancredit_points_below.expected.csv"))
        .expect("the expected answers");
    let inputs: Vec<String> =
        model["inputs"].as_array().expect("inputs").iter().map(|v| v.as_str().expect("a name").to_string()).collect();
    for (row, want) in input.records().zip(expected.records()).take(20) {
        let (row, want) = (row.expect("a row"), want.expect("a row"));
        let instance: serde_json::Map<String, Value> = inputs
            .iter()
            .map(|name| {
                let at = header.iter().position(|column| column == name).expect("the input column");
                let cell = row.get(at).unwrap_or("");
                let value = cell.parse::<f64>().map_or_else(|_| json!(cell), |number| json!(number));
                (name.clone(), if cell.is_empty() { Value::Null } else { value })
            })
            .collect();
        let answer = call(
            &app,
            Method::POST,
            "/endpoints/card/invocations",
            &[("content-type", "application/json")],
            json!({"instances": [instance]}).to_string(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let found = answer.json()["predictions"][0]["values"][0].as_f64().expect("a score");
        let score: f64 = want.get(0).expect("a score column").parse().expect("a number");
        assert_close(found, score, "scorecard points");
    }
}
