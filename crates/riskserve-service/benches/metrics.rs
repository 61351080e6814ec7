//! What recording metrics costs an invocation: the recording function alone (one thread, and several threads
//! recording on the same variant at once), side by side with a whole one-row invocation through the service layer
//! (which records once per request). Budget: recording adds at most 1 µs per request.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use riskserve_service::capture::{Capture, CaptureRecord};
use riskserve_service::{
    ArtifactInput, BodyFormat, CreateEndpoint, CreateEndpointConfig, CreateModel, DataCapture, InvocationContext,
    InvocationRequest, Metrics, ServerConfig, Service, Variant,
};

/// One invocation's worth of recording: the variant looked up by name, latencies and status, the principal.
fn record(metrics: &Metrics, latency: Duration) {
    let measures = metrics.variant(black_box("credit"), black_box("main"));
    measures.record_principal(black_box("alice"));
    measures.record(latency, latency + Duration::from_micros(20), black_box(None));
}

fn recording(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("metrics");
    let metrics = Arc::new(Metrics::default());
    metrics.variant("credit", "main");
    group.bench_function("record/1 thread", |bench| {
        let mut latency = Duration::from_micros(80);
        bench.iter(|| {
            latency += Duration::from_nanos(7);
            record(&metrics, latency);
        });
    });
    // Each of the threads records `iterations` times at once on the same variant (the same cache lines): the time
    // per record that each concurrent request sees.
    for threads in [2usize, 4, 8] {
        group.bench_function(format!("record/{threads} threads contending"), |bench| {
            bench.iter_custom(|iterations| {
                let barrier = Arc::new(Barrier::new(threads + 1));
                let workers: Vec<_> = (0..threads)
                    .map(|_| {
                        let (metrics, barrier) = (Arc::clone(&metrics), Arc::clone(&barrier));
                        std::thread::spawn(move || {
                            barrier.wait();
                            for iteration in 0..iterations {
                                record(&metrics, Duration::from_nanos(50_000 + iteration % 1000));
                            }
                        })
                    })
                    .collect();
                barrier.wait();
                let start = Instant::now();
                for worker in workers {
                    worker.join().expect("a recording thread");
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

/// A whole one-row CSV invocation through `Service::invoke_with` (queue, worker thread, scoring, answer, recording).
fn invocations(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/xgb3");
    let model = std::fs::read(fixtures.join("xgb3_binary_logistic.json")).expect("the fixture model");
    let rows = std::fs::read_to_string(fixtures.join("xgb3_binary_logistic.input.csv")).expect("the fixture rows");
    let row = format!("{}\n", rows.lines().nth(1).expect("a row"));
    let data_dir = std::env::temp_dir().join(format!("riskserve-bench-metrics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let config = ServerConfig { data_dir: data_dir.clone(), ..ServerConfig::default() };
    let service = runtime.block_on(async {
        let service = Service::start(config).await.expect("the service starts");
        let digest = service.upload_artifact(Bytes::from(model)).await.expect("upload").digest;
        service
            .create_model(CreateModel {
                name: "bench".into(),
                artifacts: vec![ArtifactInput { name: "model.json".into(), digest }],
                artifact_url: None,
                format: None,
                pipeline: None,
                tags: Default::default(),
                description: None,
            })
            .await
            .expect("model");
        service
            .create_endpoint_config(CreateEndpointConfig {
                name: "bench".into(),
                variants: vec![Variant { name: "main".into(), model: "bench".into(), weight: 1.0, instances: 1 }],
                tags: Default::default(),
                data_capture: None,
            })
            .await
            .expect("config");
        service
            .create_endpoint(CreateEndpoint { name: "bench".into(), config: "bench".into(), tags: Default::default() })
            .await
            .expect("endpoint");
        for _ in 0..1000 {
            if service.serving_instances("bench", "main").is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        service
    });
    let body = Bytes::from(row);
    criterion.bench_function("metrics/invocation one row (records once)", |bench| {
        bench.iter(|| {
            runtime.block_on(async {
                let request = InvocationRequest {
                    body: body.clone(),
                    format: BodyFormat::Csv,
                    target_variant: None,
                    explain: false,
                    inference_id: None,
                    original_body: None,
                };
                let answer = service.invoke_with(Some("bench"), request, InvocationContext::now("alice")).await;
                black_box(answer.expect("an answer"))
            })
        });
    });
    runtime.block_on(service.shutdown());
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// What data capture adds on the invocation's thread at 100 % sampling: the sampling decision, the record (the
/// request's bytes shared, the answer's copied) and a queue hand-off that never waits; a thread drains the queue
/// as the writer task would.
fn capture(criterion: &mut Criterion) {
    let settings = DataCapture {
        sampling_percentage: 100,
        capture_input: true,
        capture_output: true,
        destination: "data-capture".into(),
    };
    let (capture, mut records) = Capture::detached(settings);
    let drain = std::thread::spawn(move || while records.blocking_recv().is_some() {});
    let input = Bytes::from_static(b"1,2.5,A12,0,34,,4,A143,1200\n");
    let answer = br#"{"predictions":[{"probability":0.10897,"score":547.75,"grade":"B","decision":"approve"}]}"#;
    let variant: Arc<str> = "main".into();
    criterion.bench_function("capture/one invocation at 100 % (calling thread)", |bench| {
        bench.iter(|| {
            if capture.samples() {
                capture.offer(CaptureRecord {
                    variant: Arc::clone(&variant),
                    input: Some((input.clone(), "text/csv".to_string())),
                    output: Some((Bytes::copy_from_slice(answer), "application/json".to_string())),
                    inference_id: None,
                    time: std::time::SystemTime::now(),
                });
            }
        });
    });
    let [captured, dropped, ..] = capture.counts();
    eprintln!("capture bench: {captured} records queued, {dropped} dropped (a full queue)");
    drop(capture);
    let _ = drain.join();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = recording, invocations, capture
}
criterion_main!(benches);
