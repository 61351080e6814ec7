//! Access control and the audit trail through the HTTP application: the authorization matrix (every action ×
//! every built-in role), credentials (tokens, SigV4, rotation, disabling), bad credentials, custom Cedar
//! policies on tags, and the audit trail with its tamper checks (edit, delete, reorder, truncate).

use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use riskserve_server::sigv4::{self, SignedRequest};
use riskserve_server::{ServerConfig, Service, router, verify_data_dir};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

const ADMIN_TOKEN: &str = "rsk_test-admin-token-0123456789abcdef";

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("riskserve-security-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Scratch(path)
    }

    fn config(&self) -> ServerConfig {
        let mut config = ServerConfig { data_dir: self.0.clone(), ..ServerConfig::default() };
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
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_string()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(app: &Router, method: Method, uri: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app.clone().oneshot(request.body(Body::from(body)).expect("a request")).await.expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("a body").to_vec();
    Answer { status, body }
}

/// A request with a bearer token (JSON content type when there is a body).
async fn as_token(app: &Router, token: &str, method: Method, uri: &str, body: Option<Value>) -> Answer {
    let authorization = format!("Bearer {token}");
    let mut headers = vec![("authorization", authorization.as_str())];
    let bytes = match &body {
        Some(body) => {
            headers.push(("content-type", "application/json"));
            body.to_string().into_bytes()
        }
        None => Vec::new(),
    };
    send(app, method, uri, &headers, bytes).await
}

async fn admin(app: &Router, method: Method, uri: &str, body: Option<Value>) -> Answer {
    as_token(app, ADMIN_TOKEN, method, uri, body).await
}

/// Creates a user with `roles` and a token for it; returns the token.
async fn user_with_token(app: &Router, name: &str, roles: &[&str]) -> String {
    let created = admin(app, Method::POST, "/api/v1/users", Some(json!({"name": name, "roles": roles}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let token = admin(app, Method::POST, &format!("/api/v1/users/{name}/tokens"), None).await;
    assert_eq!(token.status, StatusCode::CREATED, "{}", token.text());
    token.json()["token"].as_str().expect("a token").to_string()
}

fn fixture_model() -> Vec<u8> {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("manifest.json")).expect("manifest")).expect("JSON");
    let case = manifest["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|case| case["name"] == "xgb3_binary_logistic_json")
        .expect("the case");
    std::fs::read(fixtures.join(case["model"].as_str().expect("a path"))).expect("the model")
}

/// Uploads the fixture model and creates model `name` with `tags`; returns its input count.
async fn create_model(app: &Router, name: &str, tags: Value) -> usize {
    let uploaded = send(
        app,
        Method::PUT,
        "/api/v1/artifacts",
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}")), ("content-type", "application/octet-stream")],
        fixture_model(),
    )
    .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.text());
    let digest = uploaded.json()["digest"].as_str().expect("a digest").to_string();
    let body = json!({"name": name, "artifacts": [{"name": "model.json", "digest": digest}], "tags": tags});
    let created = admin(app, Method::POST, "/api/v1/models", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    created.json()["inputs"].as_array().expect("inputs").len()
}

async fn deploy(app: &Router, name: &str) {
    let config = json!({"name": name, "variants": [{"name": "main", "model": name}]});
    assert_eq!(admin(app, Method::POST, "/api/v1/endpoint-configs", Some(config)).await.status, StatusCode::CREATED);
    let endpoint = json!({"name": name, "config": name});
    assert_eq!(admin(app, Method::POST, "/api/v1/endpoints", Some(endpoint)).await.status, StatusCode::CREATED);
    for _ in 0..2000 {
        let answer = admin(app, Method::GET, &format!("/api/v1/endpoints/{name}"), None).await;
        if answer.json()["status"] == "InService" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("endpoint {name} never served");
}

fn csv_row(inputs: usize) -> String {
    format!("{}\n", vec!["1"; inputs].join(","))
}

/// One action of the matrix: how to ask for it.
struct Action {
    name: &'static str,
    method: Method,
    uri: &'static str,
    body: Option<Value>,
    content_type: Option<&'static str>,
}

fn action(name: &'static str, method: Method, uri: &'static str, body: Option<Value>) -> Action {
    let content_type = body.as_ref().map(|_| "application/json");
    Action { name, method, uri, body, content_type }
}

fn actions() -> Vec<Action> {
    let missing = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    vec![
        Action {
            name: "sagemaker:UploadArtifact",
            method: Method::PUT,
            uri: "/api/v1/artifacts",
            body: None,
            content_type: Some("application/octet-stream"),
        },
        action(
            "sagemaker:CreateModel",
            Method::POST,
            "/api/v1/models",
            Some(json!({"name": "m-new", "artifacts": [{"name": "a", "digest": missing}]})),
        ),
        action("sagemaker:ListModels", Method::GET, "/api/v1/models", None),
        action("sagemaker:DescribeModel", Method::GET, "/api/v1/models/nothing", None),
        action("sagemaker:DeleteModel", Method::DELETE, "/api/v1/models/nothing", None),
        action(
            "sagemaker:CreateEndpointConfig",
            Method::POST,
            "/api/v1/endpoint-configs",
            Some(json!({"name": "c-new", "variants": [{"name": "v", "model": "nothing"}]})),
        ),
        action("sagemaker:ListEndpointConfigs", Method::GET, "/api/v1/endpoint-configs", None),
        action("sagemaker:DescribeEndpointConfig", Method::GET, "/api/v1/endpoint-configs/nothing", None),
        action("sagemaker:DeleteEndpointConfig", Method::DELETE, "/api/v1/endpoint-configs/nothing", None),
        action(
            "sagemaker:CreateEndpoint",
            Method::POST,
            "/api/v1/endpoints",
            Some(json!({"name": "e-new", "config": "nothing"})),
        ),
        action("sagemaker:ListEndpoints", Method::GET, "/api/v1/endpoints", None),
        action("sagemaker:DescribeEndpoint", Method::GET, "/api/v1/endpoints/nothing", None),
        action(
            "sagemaker:UpdateEndpoint",
            Method::PUT,
            "/api/v1/endpoints/nothing",
            Some(json!({"config": "nothing"})),
        ),
        action(
            "sagemaker:UpdateEndpointWeightsAndCapacities",
            Method::PATCH,
            "/api/v1/endpoints/nothing/variants/v",
            Some(json!({"weight": 1.0})),
        ),
        action("sagemaker:DeleteEndpoint", Method::DELETE, "/api/v1/endpoints/nothing", None),
        Action {
            name: "sagemaker:InvokeEndpoint",
            method: Method::POST,
            uri: "/endpoints/nothing/invocations",
            body: None,
            content_type: Some("text/csv"),
        },
        action("iam:CreateUser", Method::POST, "/api/v1/users", Some(json!({"name": "", "roles": []}))),
        action("iam:ListUsers", Method::GET, "/api/v1/users", None),
        action("iam:GetUser", Method::GET, "/api/v1/users/nothing", None),
        action("iam:UpdateUser", Method::PATCH, "/api/v1/users/nothing", Some(json!({"disabled": true}))),
        action("iam:DeleteUser", Method::DELETE, "/api/v1/users/nothing", None),
        action("iam:CreateAccessKey", Method::POST, "/api/v1/users/nothing/access-keys", None),
        action("iam:RotateAccessKey", Method::POST, "/api/v1/users/nothing/access-keys/AKIANOTHING/rotate", None),
        action(
            "iam:UpdateAccessKey",
            Method::PATCH,
            "/api/v1/users/nothing/access-keys/AKIANOTHING",
            Some(json!({"active": false})),
        ),
        action("iam:DeleteAccessKey", Method::DELETE, "/api/v1/users/nothing/access-keys/AKIANOTHING", None),
        action("iam:CreateToken", Method::POST, "/api/v1/users/nothing/tokens", None),
        action("iam:RotateToken", Method::POST, "/api/v1/users/nothing/tokens/t-nothing/rotate", None),
        action(
            "iam:UpdateToken",
            Method::PATCH,
            "/api/v1/users/nothing/tokens/t-nothing",
            Some(json!({"active": false})),
        ),
        action("iam:DeleteToken", Method::DELETE, "/api/v1/users/nothing/tokens/t-nothing", None),
        action("iam:ListPolicies", Method::GET, "/api/v1/policies", None),
        action("iam:GetPolicy", Method::GET, "/api/v1/policies/nothing", None),
        action("iam:PutPolicy", Method::PUT, "/api/v1/policies/p-new", Some(json!({"text": "not cedar"}))),
        action("iam:DeletePolicy", Method::DELETE, "/api/v1/policies/nothing", None),
        action("audit:Query", Method::GET, "/api/v1/audit-events", None),
        action("audit:Verify", Method::GET, "/api/v1/audit/verify", None),
        action("audit:GetPublicKey", Method::GET, "/api/v1/audit/public-key", None),
        // The operations routes (issue 6).
        action("metrics:Read", Method::GET, "/metrics", None),
        action("cost:Read", Method::GET, "/api/v1/cost", None),
        action("autoscaling:DescribeScalingPolicies", Method::GET, "/api/v1/endpoints/nothing/scaling-policies", None),
        action(
            "autoscaling:PutScalingPolicy",
            Method::PUT,
            "/api/v1/endpoints/nothing/variants/v/scaling-policy",
            Some(json!({})),
        ),
        action(
            "autoscaling:DeleteScalingPolicy",
            Method::DELETE,
            "/api/v1/endpoints/nothing/variants/v/scaling-policy",
            None,
        ),
        // Model monitoring (issue 15).
        Action {
            name: "monitoring:PutBaseline",
            method: Method::PUT,
            uri: "/api/v1/endpoints/nothing/monitoring/baseline",
            body: None,
            content_type: Some("text/csv"),
        },
        action("monitoring:DescribeBaseline", Method::GET, "/api/v1/endpoints/nothing/monitoring/baseline", None),
        Action {
            name: "monitoring:PutOutcomes",
            method: Method::POST,
            uri: "/api/v1/endpoints/nothing/monitoring/outcomes",
            body: None,
            content_type: Some("text/csv"),
        },
        action("monitoring:PutSchedule", Method::PUT, "/api/v1/endpoints/nothing/monitoring/schedule", Some(json!({}))),
        action("monitoring:DescribeSchedule", Method::GET, "/api/v1/endpoints/nothing/monitoring/schedule", None),
        action("monitoring:DeleteSchedule", Method::DELETE, "/api/v1/endpoints/nothing/monitoring/schedule", None),
        action("monitoring:StartRun", Method::POST, "/api/v1/endpoints/nothing/monitoring/runs", Some(json!({}))),
        action("monitoring:ListReports", Method::GET, "/api/v1/endpoints/nothing/monitoring/reports", None),
        action("monitoring:DescribeReport", Method::GET, "/api/v1/endpoints/nothing/monitoring/reports/latest", None),
    ]
}

/// What each built-in role may do (the roles' definition in docs/security.md).
fn allowed(role: &str, action: &str) -> bool {
    let (service, verb) = action.split_once(':').expect("service:Verb");
    let control_plane = service == "sagemaker" || service == "autoscaling" || service == "monitoring";
    let read = control_plane && (verb.starts_with("Describe") || verb.starts_with("List"));
    let metrics = service == "metrics" || service == "cost";
    match role {
        "admin" => true,
        "deployer" => control_plane || metrics,
        "invoker" => action == "sagemaker:InvokeEndpoint",
        "auditor" => read || service == "audit" || metrics,
        _ => false,
    }
}

#[tokio::test]
async fn every_action_times_every_builtin_role() {
    let scratch = Scratch::new("matrix");
    let service = Service::start(scratch.config()).await.expect("starts");
    let app = router(service.clone());
    let mut tokens = vec![("admin".to_string(), ADMIN_TOKEN.to_string())];
    for role in ["deployer", "invoker", "auditor", "none"] {
        let roles: &[&str] = if role == "none" { &[] } else { &[role] };
        tokens.push((role.to_string(), user_with_token(&app, &format!("user-{role}"), roles).await));
    }
    let mut wrong = Vec::new();
    let actions = actions();
    for (role, token) in &tokens {
        for action in &actions {
            let authorization = format!("Bearer {token}");
            let mut headers = vec![("authorization", authorization.as_str())];
            if let Some(content_type) = action.content_type {
                headers.push(("content-type", content_type));
            }
            let body = match (&action.body, action.content_type) {
                (Some(body), _) => body.to_string().into_bytes(),
                (None, Some("text/csv")) => b"1,2\n".to_vec(),
                (None, Some(_)) => b"bytes".to_vec(),
                (None, None) => Vec::new(),
            };
            let answer = send(&app, action.method.clone(), action.uri, &headers, body).await;
            let want = allowed(role, action.name);
            let denied = answer.status == StatusCode::FORBIDDEN && answer.code() == "access_denied";
            if want == denied || answer.status == StatusCode::UNAUTHORIZED {
                wrong.push(format!(
                    "{role} {}: want {}, got {} {}",
                    action.name,
                    if want { "allowed" } else { "denied" },
                    answer.status,
                    answer.text()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{} wrong decisions:\n{}", wrong.len(), wrong.join("\n"));
    // Every decision is in the audit trail, the denials with their outcome.
    let denied =
        admin(&app, Method::GET, "/api/v1/audit-events?outcome=denied&principal=user-invoker&max_results=1000", None)
            .await;
    let events = denied.json()["items"].as_array().expect("items").clone();
    assert_eq!(
        events.len(),
        actions.iter().filter(|action| !allowed("invoker", action.name)).count(),
        "{}",
        denied.text()
    );
    assert!(events.iter().all(|event| event["status"] == 403 && event["error_code"] == "access_denied"));
    service.shutdown().await;
}

#[tokio::test]
async fn credentials_are_checked_and_bad_ones_answer_401_with_stable_codes() {
    let scratch = Scratch::new("credentials");
    let service = Service::start(scratch.config()).await.expect("starts");
    let app = router(service.clone());
    for path in ["/ping", "/healthz"] {
        assert_eq!(send(&app, Method::GET, path, &[], Vec::new()).await.status, StatusCode::OK, "{path}");
    }
    for (method, path) in [
        (Method::GET, "/api/v1/models"),
        (Method::POST, "/endpoints/x/invocations"),
        (Method::GET, "/api/v1/openapi.json"),
        (Method::GET, "/no/such/route"),
    ] {
        let answer = send(&app, method, path, &[], Vec::new()).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::UNAUTHORIZED, "unauthenticated".to_string()), "{path}");
    }
    let cases: Vec<(&str, &str)> = vec![
        ("Bearer", "malformed_authorization"),
        ("Bearer ", "malformed_authorization"),
        ("Basic dXNlcjpwYXNz", "malformed_authorization"),
        ("Bearer rsk_unknown", "invalid_credentials"),
        ("AWS4-HMAC-SHA256", "malformed_authorization"),
        ("AWS4-HMAC-SHA256 Credential=AKIA/2026/x", "malformed_authorization"),
        (
            "AWS4-HMAC-SHA256 Credential=AKIAUNKNOWN/20260101/us-east-1/sagemaker/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000",
            "invalid_credentials",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIAUNKNOWN/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000",
            "malformed_authorization",
        ),
    ];
    for (header, code) in &cases {
        let answer = send(&app, Method::GET, "/api/v1/models", &[("authorization", header)], Vec::new()).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{header}: {}", answer.text());
        assert_eq!(answer.code(), *code, "{header}: {}", answer.text());
        let message = answer.json()["error"]["message"].as_str().unwrap_or_default().to_string();
        assert!(!message.is_empty() && !message.ends_with('.'), "{header}: {message}");
    }
    let unreadable = Request::builder()
        .uri("/api/v1/models")
        .header("authorization", axum::http::HeaderValue::from_bytes(b"Bearer \xff\xfe").expect("opaque bytes"))
        .body(Body::empty())
        .expect("a request");
    let response = app.clone().oneshot(unreadable).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Tokens: rotate (the old one stops), disable the user (nothing works), enable, delete.
    let token = user_with_token(&app, "alice", &["auditor"]).await;
    assert_eq!(as_token(&app, &token, Method::GET, "/api/v1/models", None).await.status, StatusCode::OK);
    let user = admin(&app, Method::GET, "/api/v1/users/alice", None).await.json();
    let token_id = user["tokens"][0]["id"].as_str().expect("a token id").to_string();
    assert!(!user.to_string().contains(&token), "a described user never shows a token");
    let rotated = admin(&app, Method::POST, &format!("/api/v1/users/alice/tokens/{token_id}/rotate"), None).await;
    let new_token = rotated.json()["token"].as_str().expect("a new token").to_string();
    assert_eq!(as_token(&app, &token, Method::GET, "/api/v1/models", None).await.code(), "invalid_credentials");
    assert_eq!(as_token(&app, &new_token, Method::GET, "/api/v1/models", None).await.status, StatusCode::OK);
    admin(&app, Method::PATCH, "/api/v1/users/alice", Some(json!({"disabled": true}))).await;
    assert_eq!(as_token(&app, &new_token, Method::GET, "/api/v1/models", None).await.code(), "invalid_credentials");
    admin(&app, Method::PATCH, "/api/v1/users/alice", Some(json!({"disabled": false}))).await;
    assert_eq!(as_token(&app, &new_token, Method::GET, "/api/v1/models", None).await.status, StatusCode::OK);
    assert_eq!(admin(&app, Method::DELETE, "/api/v1/users/alice", None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(as_token(&app, &new_token, Method::GET, "/api/v1/models", None).await.code(), "invalid_credentials");

    // Every failed authentication is audited, and the server keeps serving.
    let failures =
        admin(&app, Method::GET, "/api/v1/audit-events?outcome=unauthenticated&max_results=1000", None).await;
    let failures = failures.json()["items"].as_array().expect("items").len();
    assert!(failures >= cases.len() + 4 + 4, "{failures} failed authentications audited");
    assert_eq!(admin(&app, Method::GET, "/api/v1/models", None).await.status, StatusCode::OK);
    service.shutdown().await;
}

/// Signs with the server's own signer (checked against botocore by `sigv4`'s vector test) at the current time.
fn signed_headers(
    method: &str,
    path: &str,
    body: &[u8],
    key: (&str, &str),
    offset_seconds: i64,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("a clock").as_secs() as i64;
    let mut headers = vec![
        ("host".to_string(), "riskserve.test".to_string()),
        ("x-amz-date".to_string(), sigv4::amz_date(now + offset_seconds)),
        ("content-type".to_string(), "text/csv".to_string()),
    ];
    headers.extend(extra.iter().map(|(name, value)| (name.to_string(), value.to_string())));
    let hash = hex_sha256(body);
    let request = SignedRequest { method, path, query: None, headers: &headers, payload_hash: &hash };
    let authorization = sigv4::sign(&request, key.0, key.1, "eu-central-1").expect("signed");
    headers.push(("authorization".to_string(), authorization));
    headers
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

async fn send_owned(app: &Router, method: Method, uri: &str, headers: &[(String, String)], body: Vec<u8>) -> Answer {
    let borrowed: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    send(app, method, uri, &borrowed, body).await
}

#[tokio::test]
async fn sigv4_requests_authenticate_and_altered_ones_are_refused() {
    let scratch = Scratch::new("sigv4");
    let service = Service::start(scratch.config()).await.expect("starts");
    let app = router(service.clone());
    let inputs = create_model(&app, "credit", json!({})).await;
    deploy(&app, "credit").await;
    user_with_token(&app, "app", &["invoker"]).await;
    let key = admin(&app, Method::POST, "/api/v1/users/app/access-keys", None).await.json();
    let id = key["access_key_id"].as_str().expect("an id").to_string();
    let secret = key["secret_access_key"].as_str().expect("a secret").to_string();
    assert!(id.starts_with("AKIA") && id.len() == 20, "{id}");
    assert_eq!(secret.len(), 40, "{secret}");
    let path = "/endpoints/credit/invocations";
    let body = csv_row(inputs).into_bytes();
    let ok = signed_headers("POST", path, &body, (&id, &secret), 0, &[]);
    let answer = send_owned(&app, Method::POST, path, &ok, body.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    // UNSIGNED-PAYLOAD and a declared hash that matches.
    for declared in ["UNSIGNED-PAYLOAD".to_string(), hex_sha256(&body)] {
        let headers = signed_headers("POST", path, &body, (&id, &secret), 0, &[("x-amz-content-sha256", &declared)]);
        let headers: Vec<(String, String)> = if declared == "UNSIGNED-PAYLOAD" {
            // Signed over the literal, as botocore does when payload signing is off.
            let now = headers.iter().find(|(name, _)| name == "x-amz-date").expect("a date").1.clone();
            let mut base = vec![
                ("host".to_string(), "riskserve.test".to_string()),
                ("x-amz-date".to_string(), now),
                ("content-type".to_string(), "text/csv".to_string()),
                ("x-amz-content-sha256".to_string(), declared.clone()),
            ];
            let request = SignedRequest { method: "POST", path, query: None, headers: &base, payload_hash: &declared };
            let authorization = sigv4::sign(&request, &id, &secret, "us-east-1").expect("signed");
            base.push(("authorization".to_string(), authorization));
            base
        } else {
            headers
        };
        let answer = send_owned(&app, Method::POST, path, &headers, body.clone()).await;
        assert_eq!(answer.status, StatusCode::OK, "{declared}: {}", answer.text());
    }
    /// A tampered request: what was changed, its headers, its body, the error code expected.
    type TamperCase<'a> = (&'a str, Vec<(String, String)>, Vec<u8>, &'a str);
    let mut cases: Vec<TamperCase> = Vec::new();
    cases.push((
        "wrong secret",
        signed_headers("POST", path, &body, (&id, "0000000000000000000000000000000000000000"), 0, &[]),
        body.clone(),
        "signature_mismatch",
    ));
    let mut altered = body.clone();
    altered[0] = b'7';
    cases.push(("altered body", ok.clone(), altered.clone(), "signature_mismatch"));
    let mut altered_header = ok.clone();
    for (name, value) in &mut altered_header {
        if name == "content-type" {
            *value = "application/json".to_string();
        }
    }
    cases.push(("altered header", altered_header, body.clone(), "signature_mismatch"));
    cases.push((
        "expired",
        signed_headers("POST", path, &body, (&id, &secret), -16 * 60, &[]),
        body.clone(),
        "request_expired",
    ));
    cases.push((
        "future",
        signed_headers("POST", path, &body, (&id, &secret), 16 * 60, &[]),
        body.clone(),
        "request_expired",
    ));
    let lying = signed_headers("POST", path, &body, (&id, &secret), 0, &[("x-amz-content-sha256", &hex_sha256(&body))]);
    cases.push(("body does not match its signed hash", lying, altered, "payload_hash_mismatch"));
    let mut no_date = ok.clone();
    no_date.retain(|(name, _)| name != "x-amz-date");
    cases.push(("signed header missing", no_date, body.clone(), "malformed_authorization"));
    for (what, headers, body, code) in cases {
        let answer = send_owned(&app, Method::POST, path, &headers, body).await;
        assert_eq!(
            (answer.status, answer.code()),
            (StatusCode::UNAUTHORIZED, code.to_string()),
            "{what}: {}",
            answer.text()
        );
    }
    // An inactive key stops working; the invoker may not read the control plane even with a valid signature.
    let list = signed_headers("GET", "/api/v1/models", b"", (&id, &secret), 0, &[]);
    assert_eq!(send_owned(&app, Method::GET, "/api/v1/models", &list, Vec::new()).await.code(), "access_denied");
    admin(&app, Method::PATCH, &format!("/api/v1/users/app/access-keys/{id}"), Some(json!({"active": false}))).await;
    let answer = send_owned(
        &app,
        Method::POST,
        path,
        &signed_headers("POST", path, &body, (&id, &secret), 0, &[]),
        body.clone(),
    )
    .await;
    assert_eq!(answer.code(), "invalid_credentials");
    // The secret is stored sealed: it is nowhere in the database file in the clear.
    service.shutdown().await;
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(&scratch.0).expect("the data dir") {
        let path = entry.expect("an entry").path();
        if path.is_file() {
            stored.extend(std::fs::read(&path).expect("readable"));
        }
    }
    assert!(
        !stored.windows(secret.len()).any(|window| window == secret.as_bytes()),
        "the secret is stored in the clear"
    );
    assert!(
        !stored.windows(ADMIN_TOKEN.len()).any(|window| window == ADMIN_TOKEN.as_bytes()),
        "the token is stored in the clear"
    );
}

#[tokio::test]
async fn custom_policies_grant_by_tag_and_invalid_ones_are_refused_with_cedars_message() {
    let scratch = Scratch::new("policies");
    let service = Service::start(scratch.config()).await.expect("starts");
    let app = router(service.clone());
    let inputs = create_model(&app, "cards", json!({"team": "cards"})).await;
    create_model(&app, "loans", json!({"team": "loans"})).await;
    let token = user_with_token(&app, "cards-app", &["cards-reader"]).await;
    assert_eq!(as_token(&app, &token, Method::GET, "/api/v1/models/cards", None).await.code(), "access_denied");
    let policy = "permit (principal in Role::\"cards-reader\", action == Action::\"sagemaker:DescribeModel\", resource is Model)\n  when { resource.hasTag(\"team\") && resource.getTag(\"team\") == \"cards\" };";
    let put =
        admin(&app, Method::PUT, "/api/v1/policies/cards", Some(json!({"text": policy, "description": "cards team"})))
            .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    assert_eq!(as_token(&app, &token, Method::GET, "/api/v1/models/cards", None).await.status, StatusCode::OK);
    assert_eq!(as_token(&app, &token, Method::GET, "/api/v1/models/loans", None).await.code(), "access_denied");
    assert_eq!(as_token(&app, &token, Method::DELETE, "/api/v1/models/cards", None).await.code(), "access_denied");
    // A forbid wins over the built-in admin permit.
    let forbid = "forbid (principal, action == Action::\"sagemaker:DeleteModel\", resource is Model) when { resource.hasTag(\"team\") && resource.getTag(\"team\") == \"loans\" };";
    assert_eq!(
        admin(&app, Method::PUT, "/api/v1/policies/keep-loans", Some(json!({"text": forbid}))).await.status,
        StatusCode::OK
    );
    assert_eq!(admin(&app, Method::DELETE, "/api/v1/models/loans", None).await.code(), "access_denied");
    for (text, needle) in [
        ("permit (principal, action == Action::\"sagemaker:Fly\", resource);", "sagemaker:Fly"),
        ("permit (principal, action, resource) when { resource.owner == \"x\" };", "owner"),
        ("permit (principal, action", "does not parse"),
        ("", "no policy"),
    ] {
        let refused = admin(&app, Method::PUT, "/api/v1/policies/bad", Some(json!({"text": text}))).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{text}");
        assert!(
            refused.json()["error"]["message"].as_str().unwrap_or_default().contains(needle),
            "{text}: {}",
            refused.text()
        );
    }
    assert_eq!(admin(&app, Method::GET, "/api/v1/policies/bad", None).await.status, StatusCode::NOT_FOUND);
    // Policies survive a restart.
    service.shutdown().await;
    let service = Service::start(scratch.config()).await.expect("restarts");
    let app = router(service.clone());
    assert_eq!(as_token(&app, &token, Method::GET, "/api/v1/models/cards", None).await.status, StatusCode::OK);
    let _ = inputs;
    service.shutdown().await;
}

#[tokio::test]
async fn invocations_are_audited_without_payloads_and_queries_filter_and_paginate() {
    let scratch = Scratch::new("audit");
    let service = Service::start(scratch.config()).await.expect("starts");
    let app = router(service.clone());
    let inputs = create_model(&app, "credit", json!({})).await;
    deploy(&app, "credit").await;
    let token = user_with_token(&app, "app", &["invoker"]).await;
    let row = format!("{}\n", vec!["31337"; inputs].join(","));
    let body = row.repeat(3);
    for _ in 0..5 {
        let authorization = format!("Bearer {token}");
        let answer = send(
            &app,
            Method::POST,
            "/endpoints/credit/invocations",
            &[("authorization", &authorization), ("content-type", "text/csv")],
            body.clone().into_bytes(),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    let query = "/api/v1/audit-events?action=sagemaker:InvokeEndpoint&principal=app&max_results=2";
    let mut events = Vec::new();
    let mut uri = query.to_string();
    loop {
        let page = admin(&app, Method::GET, &uri, None).await.json();
        events.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_token"].as_str() {
            Some(token) => uri = format!("{query}&next_token={token}"),
            None => break,
        }
    }
    assert_eq!(events.len(), 5);
    for event in &events {
        assert_eq!(event["resource"], "Endpoint/credit");
        assert_eq!(event["outcome"], "allowed");
        assert_eq!(event["parameters"]["variant"], "main");
        assert_eq!(event["parameters"]["records"], 3);
        assert!(!event.to_string().contains("31337"), "the payload is in the trail: {event}");
        assert!(event["request_id"].as_str().is_some_and(|id| id.len() == 16));
    }
    let since = events[0]["time"].as_str().expect("a time").to_string();
    let later = admin(
        &app,
        Method::GET,
        &format!("/api/v1/audit-events?since={since}&resource=Endpoint/credit&max_results=1000"),
        None,
    )
    .await;
    assert!(later.json()["items"].as_array().expect("items").len() >= 5);
    for bad in ["since=yesterday", "max_results=0", "next_token=zz", "colour=red"] {
        let answer = admin(&app, Method::GET, &format!("/api/v1/audit-events?{bad}"), None).await;
        assert_eq!((answer.status, answer.code()), (StatusCode::BAD_REQUEST, "validation_error".to_string()), "{bad}");
    }
    let report = admin(&app, Method::GET, "/api/v1/audit/verify", None).await.json();
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["events"].as_i64().expect("a count") > 10);
    service.shutdown().await;
}

/// Runs SQL on the stored trail of a stopped server.
async fn tamper(scratch: &Scratch, statements: &[&str]) {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(scratch.0.join("riskserve.db"));
    let pool = sqlx::SqlitePool::connect_with(options).await.expect("the database opens");
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement.to_string())).execute(&pool).await.expect("the statement runs");
    }
    pool.close().await;
}

#[tokio::test]
async fn verify_names_the_first_edited_deleted_reordered_or_truncated_record() {
    let scratch = Scratch::new("tamper");
    let service = Service::start(scratch.config()).await.expect("starts");
    let app = router(service.clone());
    for index in 0..12 {
        admin(&app, Method::GET, &format!("/api/v1/models/m{index}"), None).await;
    }
    let key = admin(&app, Method::GET, "/api/v1/audit/public-key", None).await.json()["public_key"]
        .as_str()
        .expect("a key")
        .to_string();
    service.shutdown().await;
    let intact = verify_data_dir(&scratch.0, Some(&key)).await.expect("verifies");
    assert!(intact.ok && intact.events >= 13 && intact.last_sealed_seq == intact.events, "{intact:?}");
    let backup = std::fs::read(scratch.0.join("riskserve.db")).expect("the database");
    let restore = || std::fs::write(scratch.0.join("riskserve.db"), &backup).expect("restored");
    let cases: Vec<(&str, Vec<String>, i64, &str)> = vec![
        ("edit", vec!["UPDATE audit_events SET principal = 'mallory' WHERE seq = 5".into()], 5, "altered"),
        ("delete", vec!["DELETE FROM audit_events WHERE seq = 7".into()], 7, "missing"),
        (
            "reorder",
            vec![
                "UPDATE audit_events SET seq = -1 WHERE seq = 3".into(),
                "UPDATE audit_events SET seq = 3 WHERE seq = 4".into(),
                "UPDATE audit_events SET seq = 4 WHERE seq = -1".into(),
            ],
            3,
            "",
        ),
        (
            "truncate",
            vec![format!("DELETE FROM audit_events WHERE seq > {}", intact.events - 3)],
            intact.events - 2,
            "truncated",
        ),
        (
            "rehash after an edit",
            vec!["UPDATE audit_events SET outcome = 'denied', hash = '00' WHERE seq = 2".into()],
            2,
            "altered",
        ),
    ];
    for (what, statements, seq, needle) in cases {
        let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
        tamper(&scratch, &statements).await;
        let report = verify_data_dir(&scratch.0, Some(&key)).await.expect("verifies");
        assert!(!report.ok, "{what}: {report:?}");
        assert_eq!(report.broken_seq, Some(seq), "{what}: {report:?}");
        let problem = report.problem.clone().unwrap_or_default();
        assert!(problem.contains(needle) && problem.contains(&seq.to_string()), "{what}: {problem}");
        restore();
    }
    // A forged seal (signed by another key) is named; so is verification with the wrong trusted key.
    tamper(&scratch, &["UPDATE audit_seals SET last_hash = 'ff' WHERE id = 1"]).await;
    let report = verify_data_dir(&scratch.0, Some(&key)).await.expect("verifies");
    assert!(report.problem.unwrap_or_default().contains("signature"));
    restore();
    let other_key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let report = verify_data_dir(&scratch.0, Some(other_key)).await.expect("verifies");
    assert!(!report.ok);
    // The intact trail still verifies after a restart, and new events continue the chain.
    let service = Service::start(scratch.config()).await.expect("restarts");
    let app = router(service.clone());
    admin(&app, Method::GET, "/api/v1/models", None).await;
    let report = admin(&app, Method::GET, "/api/v1/audit/verify", None).await.json();
    assert_eq!(report["ok"], true, "{report}");
    service.shutdown().await;
}

#[tokio::test]
async fn the_benchmark_setting_is_refused_off_loopback() {
    let scratch = Scratch::new("benchmark");
    let mut config = scratch.config();
    config.auth.insecure_disable_for_benchmark = true;
    config.listen = "0.0.0.0:8080".parse().expect("an address");
    let refused = Service::start(config.clone()).await.err().expect("refused");
    assert!(refused.to_string().contains("loopback"), "{refused}");
    config.listen = "127.0.0.1:8080".parse().expect("an address");
    let service = Service::start(config).await.expect("starts on loopback");
    let app = router(service.clone());
    assert_eq!(send(&app, Method::GET, "/api/v1/models", &[], Vec::new()).await.status, StatusCode::OK);
    service.shutdown().await;
}

/// The session cookie of a console sign-in answer, and its `Set-Cookie` attributes.
async fn console_sign_in(app: &Router, body: Value, headers: &[(&str, &str)]) -> (StatusCode, Value, Option<String>) {
    let mut request =
        Request::builder().method(Method::POST).uri("/console/api/session").header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response =
        app.clone().oneshot(request.body(Body::from(body.to_string())).expect("a request")).await.expect("infallible");
    let status = response.status();
    let cookie = response.headers().get("set-cookie").map(|value| value.to_str().expect("text").to_string());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("a body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null), cookie)
}

#[tokio::test]
async fn console_sessions_act_as_their_user_and_need_the_csrf_token_to_change_state() {
    let scratch = Scratch::new("console");
    let service = Service::start(scratch.config()).await.expect("starts");
    let app = router(service.clone());
    // The console's files are public, carry no data and a strict Content-Security-Policy.
    let page = send(&app, Method::GET, "/console", &[], Vec::new()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("/console/assets/app.js"), "{}", page.text());
    for path in ["/console", "/console/assets/app.js", "/console/assets/app.css"] {
        let response = app
            .clone()
            .oneshot(Request::builder().uri(path).body(Body::empty()).expect("a request"))
            .await
            .expect("infallible");
        let policy = response.headers().get("content-security-policy").expect("a CSP").to_str().expect("text");
        assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"), "{path}: {policy}");
    }

    // Wrong or malformed credentials: 401 / 400, no cookie.
    let (status, body, cookie) = console_sign_in(&app, json!({"token": "rsk_wrong"}), &[]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str(), cookie),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials"), None)
    );
    let (status, _, _) = console_sign_in(&app, json!({"token": ADMIN_TOKEN, "access_key_id": "AKIA"}), &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The administrator signs in with the token: an HttpOnly, SameSite=Strict cookie (Secure behind TLS).
    let (status, session, cookie) = console_sign_in(&app, json!({"token": ADMIN_TOKEN}), &[]).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let cookie = cookie.expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("Secure"),
        "{cookie}"
    );
    assert_eq!(session["principal"], "admin");
    let csrf = session["csrf_token"].as_str().expect("a CSRF token").to_string();
    let (_, _, tls_cookie) =
        console_sign_in(&app, json!({"token": ADMIN_TOKEN}), &[("x-forwarded-proto", "https")]).await;
    assert!(tls_cookie.expect("a cookie").contains("; Secure"));
    let session_cookie = cookie.split(';').next().expect("name=value").to_string();
    let with_cookie = |extra: Option<&str>| {
        let mut headers = vec![
            ("cookie".to_string(), session_cookie.clone()),
            ("content-type".to_string(), "application/json".to_string()),
        ];
        if let Some(token) = extra {
            headers.push(("x-csrf-token".to_string(), token.to_string()));
        }
        headers
    };
    let current = send_owned(&app, Method::GET, "/console/api/session", &with_cookie(None), Vec::new()).await;
    assert_eq!(current.json()["csrf_token"], csrf.as_str());
    // Reads need only the cookie; a change needs the CSRF token too, and Cedar decides as for a token.
    let listed = send_owned(&app, Method::GET, "/api/v1/endpoints", &with_cookie(None), Vec::new()).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    let user = json!({"name": "console-made", "roles": ["auditor"]}).to_string().into_bytes();
    for token in [None, Some("wrong-token")] {
        let refused = send_owned(&app, Method::POST, "/api/v1/users", &with_cookie(token), user.clone()).await;
        assert_eq!(
            (refused.status, refused.code().as_str()),
            (StatusCode::FORBIDDEN, "csrf_failed"),
            "{}",
            refused.text()
        );
    }
    let created = send_owned(&app, Method::POST, "/api/v1/users", &with_cookie(Some(&csrf)), user).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());

    // An invoker's session may not list endpoints: the same decision as with its token.
    let token = user_with_token(&app, "console-invoker", &["invoker"]).await;
    let (_, _, cookie) = console_sign_in(&app, json!({"token": token}), &[]).await;
    let invoker_cookie = cookie.expect("a cookie").split(';').next().expect("name=value").to_string();
    let denied = send(&app, Method::GET, "/api/v1/endpoints", &[("cookie", &invoker_cookie)], Vec::new()).await;
    assert_eq!((denied.status, denied.code().as_str()), (StatusCode::FORBIDDEN, "access_denied"));
    // Disabling the user ends its session.
    let disabled = admin(&app, Method::PATCH, "/api/v1/users/console-invoker", Some(json!({"disabled": true}))).await;
    assert!(disabled.status.is_success(), "{}", disabled.text());
    let ended = send(&app, Method::GET, "/api/v1/endpoints", &[("cookie", &invoker_cookie)], Vec::new()).await;
    assert_eq!(ended.status, StatusCode::UNAUTHORIZED, "{}", ended.text());

    // Sign-out needs the CSRF token, then the cookie is worthless.
    let refused = send_owned(&app, Method::POST, "/console/api/sign-out", &with_cookie(None), Vec::new()).await;
    assert_eq!(refused.code(), "csrf_failed");
    let out = send_owned(&app, Method::POST, "/console/api/sign-out", &with_cookie(Some(&csrf)), Vec::new()).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let after = send_owned(&app, Method::GET, "/api/v1/endpoints", &with_cookie(None), Vec::new()).await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);

    // The audit trail names who signed in, never a secret.
    let events = admin(&app, Method::GET, "/api/v1/audit-events?action=console:SignIn", None).await.json();
    let items = events["items"].as_array().expect("items");
    assert!(items.iter().any(|event| event["principal"] == "admin" && event["outcome"] == "allowed"), "{events}");
    assert!(items.iter().any(|event| event["outcome"] == "unauthenticated"), "{events}");
    assert!(!events.to_string().contains(ADMIN_TOKEN) && !events.to_string().contains("rsk_wrong"));
}
