//! Access-control overhead in-process, without a network or a client in the way: one-row invocations through the
//! router (`tower::ServiceExt::oneshot`) of a server with authentication, Cedar and the audit trail, and of one with
//! them off (the benchmark setting), alternating rounds. `cargo run --release -p riskserve-server --example
//! auth_overhead [rounds] [requests]`.

use std::path::PathBuf;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use riskserve_server::{ServerConfig, Service, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const TOKEN: &str = "rsk_bench-admin-token-0123456789abcdef";

async fn call(
    app: &axum::Router,
    method: Method,
    uri: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("a request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    (status, axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("a body").to_vec())
}

async fn deploy(app: &axum::Router, model: &[u8]) -> usize {
    let (_, uploaded) = call(app, Method::PUT, "/api/v1/artifacts", "application/octet-stream", model.to_vec()).await;
    let digest = serde_json::from_slice::<Value>(&uploaded).expect("JSON")["digest"].clone();
    let body = json!({"name": "bench", "artifacts": [{"name": "model.json", "digest": digest}]});
    let (_, created) =
        call(app, Method::POST, "/api/v1/models", "application/json", body.to_string().into_bytes()).await;
    let inputs = serde_json::from_slice::<Value>(&created).expect("JSON")["inputs"].as_array().map_or(0, Vec::len);
    let config = json!({"name": "bench", "variants": [{"name": "main", "model": "bench"}]});
    call(app, Method::POST, "/api/v1/endpoint-configs", "application/json", config.to_string().into_bytes()).await;
    let endpoint = json!({"name": "bench", "config": "bench"});
    call(app, Method::POST, "/api/v1/endpoints", "application/json", endpoint.to_string().into_bytes()).await;
    loop {
        let (_, answer) = call(app, Method::GET, "/api/v1/endpoints/bench", "application/json", Vec::new()).await;
        if serde_json::from_slice::<Value>(&answer).expect("JSON")["status"] == "InService" {
            return inputs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let arguments: Vec<usize> = std::env::args().skip(1).filter_map(|argument| argument.parse().ok()).collect();
    let rounds = arguments.first().copied().unwrap_or(15);
    let requests = arguments.get(1).copied().unwrap_or(5000);
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let model = std::fs::read(fixtures.join("xgb3/xgb3_binary_logistic.json")).expect("the fixture model");
    let mut apps = Vec::new();
    for (name, off) in [("off", true), ("on", false)] {
        let data_dir = std::env::temp_dir().join(format!("riskserve-auth-overhead-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let mut config = ServerConfig { data_dir: data_dir.clone(), ..ServerConfig::default() };
        config.auth.bootstrap.token = Some(TOKEN.to_string());
        config.auth.insecure_disable_for_benchmark = off;
        let service = Service::start(config).await.expect("starts");
        let app = router(service.clone());
        let inputs = deploy(&app, &model).await;
        apps.push((name, service, app, data_dir, inputs));
    }
    let mut medians: Vec<(&str, Vec<f64>)> = apps.iter().map(|(name, ..)| (*name, Vec::new())).collect();
    for _ in 0..rounds {
        for (index, (_, _, app, _, inputs)) in apps.iter().enumerate() {
            let row = format!("{}\n", vec!["1"; *inputs].join(",")).into_bytes();
            let mut latencies = Vec::with_capacity(requests);
            for _ in 0..requests {
                let start = Instant::now();
                let (status, _) =
                    call(app, Method::POST, "/endpoints/bench/invocations", "text/csv", row.clone()).await;
                latencies.push(start.elapsed().as_secs_f64() * 1e6);
                assert_eq!(status, StatusCode::OK);
            }
            medians[index].1.push(median(&mut latencies));
        }
    }
    let off = medians[0].1.clone();
    println!("{rounds} alternating rounds of {requests} one-row invocations in-process (µs, medians of each round)");
    for (name, values) in &medians {
        let paired: Vec<f64> = values.iter().zip(&off).map(|(value, base)| value - base).collect();
        let mut sorted = values.clone();
        let mut paired_sorted = paired.clone();
        println!(
            "{name:>4}: median {:.2}  quietest {:.2}  paired overhead median {:+.2}  rounds {:?}",
            median(&mut sorted),
            values.iter().copied().fold(f64::INFINITY, f64::min),
            median(&mut paired_sorted),
            values.iter().map(|value| (value * 10.0).round() / 10.0).collect::<Vec<_>>()
        );
    }
    for (_, service, _, data_dir, _) in apps {
        service.shutdown().await;
        let _ = std::fs::remove_dir_all(data_dir);
    }
}
