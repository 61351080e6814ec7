//! A whole monitoring run over millions of captured records: the German Credit pipeline deployed in an embedded
//! service, a baseline, capture files written as the capture writer writes them, outcomes uploaded for a share of
//! the inference ids, then one run; prints the run's wall time, records/s and the peak resident memory of the run.
//!
//!     cargo run --release -p riskserve-service --example bench_monitor_run -- [RECORDS] [OUTCOMES]
//!
//! Defaults: 10,000,000 records and 1,000,000 outcomes. The records (about 0.6 KB each) are written to a scratch data
//! directory under the system's temporary folder and removed at the end.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use riskserve_service::capture::{CaptureRecord, capture_line};
use riskserve_service::{BaselineQuery, MonitorSettings, ServerConfig, Service};
use serde_json::json;

const RECORDS_PER_FILE: usize = 1_000;
const FILES_PER_HOUR: usize = 500;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/german-credit/xgboost")
}

fn peak_resident_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn resident_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resets the peak resident memory to the current one (Linux `clear_refs`), so VmHWM measures the run alone.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn csv_line(cells: &csv::StringRecord) -> String {
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    writer.write_record(cells).expect("a row");
    String::from_utf8(writer.into_inner().expect("written")).expect("UTF-8")
}

#[tokio::main]
async fn main() {
    let mut arguments = std::env::args().skip(1);
    let records: usize = arguments.next().map_or(10_000_000, |text| text.parse().expect("RECORDS is a count"));
    let outcomes: usize = arguments.next().map_or(1_000_000, |text| text.parse().expect("OUTCOMES is a count"));
    let data = std::env::temp_dir().join(format!("riskserve-bench-monitor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut config = ServerConfig { data_dir: data.clone(), ..ServerConfig::default() };
    config.auth.bootstrap.token = Some("bench-monitor-admin-token-0123456789".to_string());
    config.monitor_poll_seconds = 3600.0;
    let service = Service::start(config).await.expect("the service starts");

    let upload = |file: &str| {
        let service = service.clone();
        let bytes = std::fs::read(example().join(file)).expect("the example exists");
        async move { service.upload_artifact(Bytes::from(bytes)).await.expect("upload").digest }
    };
    let (model, pipeline) = (upload("model.json").await, upload("pipeline.json").await);
    let request = json!({"name": "gc", "artifacts": [{"name": "model.json", "digest": model}], "pipeline": pipeline});
    service.create_model(serde_json::from_value(request).unwrap()).await.expect("model");
    let request = json!({"name": "gc", "variants": [{"name": "main", "model": "gc"}],
                         "data_capture": {"sampling_percentage": 100}});
    service.create_endpoint_config(serde_json::from_value(request).unwrap()).await.expect("config");
    let request = json!({"name": "bench", "config": "gc"});
    service.create_endpoint(serde_json::from_value(request).unwrap()).await.expect("endpoint");
    let deadline = Instant::now() + Duration::from_secs(60);
    while service.get_endpoint("bench").await.expect("endpoint").status != "InService" {
        assert!(Instant::now() < deadline, "the endpoint did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The baseline: the example's 250 rows with a seeded outcome column.
    let mut reader = csv::Reader::from_path(example().join("input.csv")).expect("rows");
    let header = reader.headers().expect("header").clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(|row| row.expect("a row")).collect();
    let mut baseline = csv_line(&header).trim_end().to_string() + ",bad\n";
    for (index, row) in rows.iter().enumerate() {
        baseline.push_str(csv_line(row).trim_end());
        baseline.push_str(if index % 10 < 3 { ",1\n" } else { ",0\n" });
    }
    let query = BaselineQuery { outcome_column: Some("bad".into()), ..BaselineQuery::default() };
    let description = service.put_baseline("bench", &query, Bytes::from(baseline)).await.expect("baseline");
    let grades: Vec<String> = description.baseline.grades.iter().map(|grade| grade.grade.clone()).collect();

    // The captured records, as the capture writer lays them out: one file per 1,000, 500 files an hour, in the
    // last hours before now.
    let started = Instant::now();
    let now = SystemTime::now();
    let hours = records.div_ceil(RECORDS_PER_FILE * FILES_PER_HOUR);
    let lines: Vec<String> = rows.iter().map(csv_line).collect();
    let mut written = 0;
    let mut file_number = 0;
    while written < records {
        let hour_index = file_number / FILES_PER_HOUR;
        let time = now - Duration::from_secs(3600 * (hours - hour_index) as u64 - 1800);
        let moment =
            riskserve_store::unix_to_rfc3339(time.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64, 0);
        let folder = data.join(format!(
            "artifacts/data-capture/bench/main/{}/{}/{}/{}",
            &moment[0..4],
            &moment[5..7],
            &moment[8..10],
            &moment[11..13]
        ));
        std::fs::create_dir_all(&folder).expect("folder");
        let mut text = String::with_capacity(RECORDS_PER_FILE * 700);
        for _ in 0..RECORDS_PER_FILE.min(records - written) {
            let row = written % rows.len();
            let probability = ((written as u64).wrapping_mul(2_654_435_761) % 1000) as f64 / 1000.0;
            let grade = &grades[(probability * grades.len() as f64) as usize % grades.len()];
            let decision = if probability < 0.3 { "approve" } else { "decline" };
            let output = format!("{probability},{},{grade},{decision}\n", 600.0 - probability * 100.0);
            let record = CaptureRecord {
                variant: "main".into(),
                input: Some((Bytes::from(lines[row].clone()), "text/csv".to_string())),
                output: Some((Bytes::from(output), "text/csv".to_string())),
                inference_id: Some(format!("bench-{written}")),
                time,
            };
            text.push_str(&capture_line(&record, &moment));
            text.push('\n');
            written += 1;
        }
        std::fs::write(folder.join(format!("{file_number:08}.jsonl")), text).expect("a capture file");
        file_number += 1;
    }
    let generated = started.elapsed();

    // Outcomes for the first OUTCOMES ids, uploaded in CSV parts of 200,000, plus 1,000 for ids never captured.
    let mut sent = 0;
    while sent < outcomes {
        let part = (outcomes - sent).min(200_000);
        let mut body = String::from("inference_id,bad,attribute\n");
        for id in sent..sent + part {
            let group = if id % 3 == 0 { "a" } else { "b" };
            body.push_str(&format!("bench-{id},{},{group}\n", u8::from(id % 7 == 0)));
        }
        service.put_outcomes("bench", Some("text/csv"), Bytes::from(body)).await.expect("outcomes");
        sent += part;
    }
    let mut ghosts = String::from("inference_id,bad\n");
    for id in 0..1_000 {
        ghosts.push_str(&format!("ghost-{id},0\n"));
    }
    service.put_outcomes("bench", Some("text/csv"), Bytes::from(ghosts)).await.expect("ghost outcomes");
    let settings: MonitorSettings =
        serde_json::from_value(json!({"window_hours": hours + 1, "fairness": {"attribute": "group"}})).unwrap();
    service.put_monitor_schedule("bench", settings).await.expect("schedule");

    let before = resident_mb();
    reset_peak();
    let run = Instant::now();
    let report = service.start_monitor_run("bench").await.expect("the run");
    let seconds = run.elapsed().as_secs_f64();
    let peak = peak_resident_mb();
    let summary = json!({
        "records": report.records,
        "rows": report.rows,
        "files": report.files,
        "status": report.status,
        "outcomes_joined": report.outcomes_joined,
        "outcomes_unmatched": report.outcomes_unmatched,
        "breaches": report.breaches.len(),
        "run_seconds": seconds,
        "records_per_second": report.records as f64 / seconds,
        "resident_mb_before_run": before,
        "peak_resident_mb_during_run": peak,
        "generate_seconds": generated.as_secs_f64(),
    });
    println!("{summary}");
    service.shutdown().await;
    let _ = std::fs::remove_dir_all(&data);
}
