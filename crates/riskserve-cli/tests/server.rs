//! `riskserve serve` end to end: the real binary on a loopback port with a scratch data dir, driven through the
//! CLI client and over HTTP: a full deploy flow, updates under load, kill -9 at random points, malformed requests.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------------------------
// Fixtures: three XGBoost models over the same German Credit columns, so one row fits all and each answers
// differently; the expected values come from `riskserve score`, itself checked against XGBoost by the parity tests.

/// (model name on the server, fixture file).
const MODELS: [(&str, &str); 3] = [
    ("m-logistic", "xgb3/xgb3_binary_logistic.json"),
    ("m-base", "xgb3/xgb3_base_score_user.json"),
    ("m-logitraw", "xgb3/xgb3_binary_logitraw.json"),
];
/// Rows with the columns of every model in `MODELS` (a header, then rows; empty cells are missing values).
const ROWS: &str = "xgb3/xgb3_binary_logistic.input.csv";
/// A model with string categories, for unknown-category inputs.
const CATEGORICAL_MODEL: &str = "xgb3/xgb3_categorical.json";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn model_file(name: &str) -> PathBuf {
    let (_, file) = MODELS.iter().find(|(model, _)| *model == name).expect("a model of MODELS");
    fixtures().join(file)
}

/// The fixture rows: header and cells as text.
struct Rows {
    header: Vec<String>,
    cells: Vec<Vec<String>>,
}

fn rows() -> &'static Rows {
    static ROWS_CACHE: OnceLock<Rows> = OnceLock::new();
    ROWS_CACHE.get_or_init(|| {
        let text = std::fs::read_to_string(fixtures().join(ROWS)).expect("the fixture rows exist");
        let mut lines = text.lines();
        let header = lines.next().unwrap().split(',').map(str::to_string).collect();
        let cells = lines.filter(|line| !line.is_empty()).map(|line| line.split(',').map(str::to_string).collect());
        Rows { header, cells: cells.collect() }
    })
}

impl Rows {
    /// Row `index` as a CSV line in `fields` order (the model's `inputs`).
    fn csv_line(&self, index: usize, fields: &[String]) -> String {
        fields.iter().map(|field| self.cell(index, field).to_string()).collect::<Vec<_>>().join(",")
    }

    fn cell(&self, index: usize, field: &str) -> &str {
        let column = self.header.iter().position(|name| name == field).unwrap_or_else(|| panic!("no column {field}"));
        &self.cells[index][column]
    }

    /// Row `index` as a JSON array in `fields` order (null for a missing value).
    fn json_positional(&self, index: usize, fields: &[String]) -> Value {
        Value::Array(fields.iter().map(|field| number_or_null(self.cell(index, field))).collect())
    }

    /// Row `index` as a JSON object by field name (missing values left out).
    fn json_named(&self, index: usize, fields: &[String]) -> Value {
        let mut object = serde_json::Map::new();
        for field in fields {
            let value = number_or_null(self.cell(index, field));
            if !value.is_null() {
                object.insert(field.clone(), value);
            }
        }
        Value::Object(object)
    }
}

fn number_or_null(cell: &str) -> Value {
    if cell.is_empty() { Value::Null } else { json!(cell.parse::<f64>().expect("fixture cells are numbers")) }
}

/// `riskserve score`'s first value for every fixture row, per model.
fn expected(model: &str) -> &'static [f64] {
    static EXPECTED: OnceLock<Mutex<HashMap<String, &'static [f64]>>> = OnceLock::new();
    let cache = EXPECTED.get_or_init(|| Mutex::new(HashMap::new()));
    let mut cache = cache.lock().unwrap();
    cache.entry(model.to_string()).or_insert_with(|| {
        let output =
            riskserve(&["score", "--model", path_str(&model_file(model)), "--input", path_str(&fixtures().join(ROWS))]);
        assert!(output.status.success(), "riskserve score failed: {}", stderr(&output));
        let text = String::from_utf8(output.stdout).unwrap();
        let values: Vec<f64> =
            text.lines().skip(1).map(|line| line.split(',').next().unwrap().parse().unwrap()).collect();
        assert_eq!(values.len(), rows().cells.len());
        Box::leak(values.into_boxed_slice())
    })
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("fixture paths are UTF-8")
}

// ---------------------------------------------------------------------------------------------------------------
// The server process and small clients.

fn riskserve(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_riskserve")).args(arguments).output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A scratch directory unique to one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("riskserve-server-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `riskserve serve`; killed when dropped.
struct Server {
    child: Child,
    /// `host:port` as the server printed it once listening.
    address: String,
    log: Arc<Mutex<String>>,
    agent: ureq::Agent,
}

/// One HTTP answer.
struct Reply {
    status: u16,
    variant: Option<String>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("status {}: not JSON ({error}): {}", self.status, self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, &[])
    }

    /// Starts the server on a free loopback port and waits for its `riskserve listening on http://ADDR` line.
    fn start_with(data_dir: &Path, environment: &[(&str, &str)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_riskserve"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", path_str(data_dir)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("RISKSERVE_ADMIN_TOKEN", ADMIN_TOKEN);
        for (name, value) in environment {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("riskserve serve starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (ready, address) = mpsc::channel();
        let stream = child.stderr.take().unwrap();
        let log_writer = Arc::clone(&log);
        // The log is drained for the server's whole life so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line.split("riskserve listening on http://").nth(1) {
                    let _ = ready.send(address.trim().to_string());
                }
                let mut log = log_writer.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let address = match address.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("riskserve serve did not print its address; log:\n{}", log.lock().unwrap());
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        Server { child, address, log, agent }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL: no shutdown code runs.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Runs a client command against this server.
    fn cli(&self, arguments: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_riskserve"))
            .args(arguments)
            .env("RISKSERVE_URL", self.url())
            .env("RISKSERVE_TOKEN", ADMIN_TOKEN)
            .output()
            .expect("the binary runs")
    }

    /// Runs a client command that must succeed; its standard output.
    fn cli_ok(&self, arguments: &[&str]) -> String {
        let output = self.cli(arguments);
        assert!(
            output.status.success(),
            "riskserve {} failed: {}\nserver log:\n{}",
            arguments.join(" "),
            stderr(&output),
            self.log()
        );
        stdout(&output)
    }

    fn cli_json(&self, arguments: &[&str]) -> Value {
        let mut arguments = arguments.to_vec();
        arguments.extend(["--output", "json"]);
        let text = self.cli_ok(&arguments);
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Reply {
        send(&self.agent, &self.url(), method, path, content_type, body, headers)
            .unwrap_or_else(|error| panic!("{method} {path}: {error}\nserver log:\n{}", self.log()))
    }

    fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, b"", &[])
    }

    fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, Some("application/json"), body.to_string().as_bytes(), &[])
    }

    /// Uploads a model file and registers it; panics unless the server says 201.
    fn create_model(&self, name: &str, file: &Path) -> Value {
        let bytes = std::fs::read(file).unwrap();
        let upload = self.send("PUT", "/api/v1/artifacts", Some("application/octet-stream"), &bytes, &[]);
        assert_eq!(upload.status, 201, "{}", upload.text());
        let file_name = file.file_name().unwrap().to_str().unwrap();
        let body = json!({"name": name, "artifacts": [{"name": file_name, "digest": upload.json()["digest"]}]});
        let created = self.post_json("/api/v1/models", &body);
        assert_eq!(created.status, 201, "{}", created.text());
        created.json()
    }

    /// Uploads a model file and a pipeline spec and registers them as one model; panics unless 201.
    fn create_pipeline_model(&self, name: &str, file: &Path, pipeline: &Path) -> Value {
        let mut digests = Vec::new();
        for path in [file, pipeline] {
            let upload = self.send(
                "PUT",
                "/api/v1/artifacts",
                Some("application/octet-stream"),
                &std::fs::read(path).unwrap(),
                &[],
            );
            assert_eq!(upload.status, 201, "{}", upload.text());
            digests.push(upload.json()["digest"].clone());
        }
        let file_name = file.file_name().unwrap().to_str().unwrap();
        let body =
            json!({"name": name, "artifacts": [{"name": file_name, "digest": digests[0]}], "pipeline": digests[1]});
        let created = self.post_json("/api/v1/models", &body);
        assert_eq!(created.status, 201, "{}", created.text());
        created.json()
    }

    fn create_config(&self, name: &str, variants: &[(&str, &str, f64)]) -> Value {
        let variants: Vec<Value> = variants
            .iter()
            .map(|(variant, model, weight)| json!({"name": variant, "model": model, "weight": weight}))
            .collect();
        let created = self.post_json("/api/v1/endpoint-configs", &json!({"name": name, "variants": variants}));
        assert_eq!(created.status, 201, "{}", created.text());
        created.json()
    }

    /// Polls an endpoint until `done` holds for its description; panics after `limit`.
    fn wait_endpoint(&self, name: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let reply = self.get(&format!("/api/v1/endpoints/{name}"));
            let endpoint = if reply.status == 404 { Value::Null } else { reply.json() };
            if done(&endpoint) {
                return endpoint;
            }
            assert!(start.elapsed() < limit, "endpoint {name} is still {endpoint}\nserver log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_in_service(&self, name: &str, config: &str) -> Value {
        self.wait_endpoint(name, Duration::from_secs(60), |endpoint| {
            assert_ne!(endpoint["status"], "Failed", "endpoint {name} failed: {endpoint}");
            endpoint["status"] == "InService" && endpoint["config"] == config
        })
    }

    /// The model's input field names, in CSV order.
    fn inputs(&self, model: &str) -> Vec<String> {
        let reply = self.get(&format!("/api/v1/models/{model}"));
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["inputs"].as_array().unwrap().iter().map(|name| name.as_str().unwrap().to_string()).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One request through `agent` (an error only when no HTTP answer came back).
fn send(
    agent: &ureq::Agent,
    base: &str,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Result<Reply, String> {
    let url = format!("{base}{path}");
    let mut request = ureq::http::Request::builder().method(method).uri(&url);
    // Requests authenticate as the administrator unless they bring their own credentials.
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("authorization")) {
        request = request.header("Authorization", format!("Bearer {ADMIN_TOKEN}"));
    }
    if let Some(content_type) = content_type {
        request = request.header("Content-Type", content_type);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body.to_vec()).map_err(|error| error.to_string())?;
    let mut response = agent.run(request).map_err(|error| error.to_string())?;
    let status = response.status().as_u16();
    let variant = response
        .headers()
        .get("x-amzn-invoked-production-variant")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let body = response.body_mut().with_config().limit(64 << 20).read_to_vec().map_err(|error| error.to_string())?;
    Ok(Reply { status, variant, body })
}

/// The first value of each line of a CSV answer.
fn csv_values(text: &str) -> Vec<f64> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| line.split(',').next().unwrap().trim().parse().unwrap_or_else(|_| panic!("not a number: {line}")))
        .collect()
}

/// A seeded xorshift generator: the crash test's random points are repeatable from the printed seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// A full flow through the CLI.

#[test]
fn a_model_goes_from_upload_to_invocations_to_deletion_through_the_cli() {
    let scratch = Scratch::new("flow");
    let server = Server::start(&scratch.join("data"));

    let model = server.cli_json(&[
        "model",
        "create",
        "--name",
        "m-logistic",
        "--artifact",
        path_str(&model_file("m-logistic")),
        "--tag",
        "team=risk",
        "--description",
        "German Credit, 60 trees",
    ]);
    assert_eq!(model["name"], "m-logistic");
    assert_eq!(model["tags"], json!({"team": "risk"}));
    assert_eq!(model["artifacts"][0]["name"], "xgb3_binary_logistic.json");
    assert!(model["artifacts"][0]["digest"].as_str().unwrap().starts_with("sha256:"), "{model}");
    let fields: Vec<String> =
        model["inputs"].as_array().unwrap().iter().map(|name| name.as_str().unwrap().to_string()).collect();
    assert_eq!(fields.len(), rows().header.len());
    server.cli_ok(&["model", "create", "--name", "m-base", "--artifact", path_str(&model_file("m-base"))]);
    // A model the server reads from a file URL itself.
    let url = format!("file://{}", model_file("m-logitraw").canonicalize().unwrap().display());
    let by_url = server.cli_json(&["model", "create", "--name", "m-by-url", "--artifact-url", &url]);
    assert_eq!(by_url["artifacts"][0]["name"], "xgb3_binary_logitraw.json", "{by_url}");
    server.cli_ok(&["model", "delete", "m-by-url"]);

    let listed = server.cli_json(&["model", "list"]);
    let names: BTreeSet<&str> =
        listed.as_array().unwrap().iter().map(|model| model["name"].as_str().unwrap()).collect();
    assert_eq!(names, BTreeSet::from(["m-base", "m-logistic"]));
    let table = server.cli_ok(&["model", "list"]);
    assert!(table.starts_with("NAME") && table.contains("m-logistic") && table.contains("m-base"), "{table}");
    let described = server.cli_ok(&["model", "describe", "m-logistic"]);
    assert!(described.contains("xgb3_binary_logistic.json") && described.contains("team=risk"), "{described}");

    let config = server.cli_json(&[
        "endpoint-config",
        "create",
        "--name",
        "two-variants",
        "--variant",
        "name=a,model=m-logistic,weight=1",
        "--variant",
        "name=b,model=m-base,weight=3,instances=2",
    ]);
    assert_eq!(config["variants"].as_array().unwrap().len(), 2, "{config}");

    let created = server.cli_json(&["endpoint", "create", "--name", "credit", "--config", "two-variants", "--wait"]);
    assert_eq!(created["status"], "InService", "{created}");
    let described = server.cli_json(&["endpoint", "describe", "credit"]);
    assert_eq!(described["name"], "credit");
    assert_eq!(described["status"], "InService");
    assert_eq!(described["config"], "two-variants");
    let variants: Vec<(String, String, f64, u64)> = described["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|variant| {
            (
                variant["name"].as_str().unwrap().to_string(),
                variant["model"].as_str().unwrap().to_string(),
                variant["weight"].as_f64().unwrap(),
                variant["instances"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        variants,
        vec![("a".into(), "m-logistic".into(), 1.0, 1), ("b".into(), "m-base".into(), 3.0, 2)],
        "{described}"
    );
    let table = server.cli_ok(&["endpoint", "list"]);
    assert!(table.contains("credit") && table.contains("InService"), "{table}");

    // The same rows through CSV and JSON, to each variant, answer what `riskserve score` answers for its model.
    let count = 25;
    let csv: String = (0..count).map(|index| rows().csv_line(index, &fields) + "\n").collect();
    std::fs::write(scratch.join("rows.csv"), &csv).unwrap();
    let positional: Vec<Value> = (0..count).map(|index| rows().json_positional(index, &fields)).collect();
    std::fs::write(scratch.join("positional.json"), json!({"instances": positional}).to_string()).unwrap();
    let named: Vec<Value> = (0..count).map(|index| rows().json_named(index, &fields)).collect();
    std::fs::write(scratch.join("named.json"), json!({"instances": named}).to_string()).unwrap();
    for (variant, model) in [("a", "m-logistic"), ("b", "m-base")] {
        let want = &expected(model)[..count];
        let answer = server.cli_ok(&[
            "endpoint",
            "invoke",
            "credit",
            "--content-type",
            "text/csv",
            "--body",
            path_str(&scratch.join("rows.csv")),
            "--target-variant",
            variant,
        ]);
        assert_eq!(csv_values(&answer), want, "CSV to variant {variant}");
        for body in ["positional.json", "named.json"] {
            let answer = server.cli_ok(&[
                "endpoint",
                "invoke",
                "credit",
                "--content-type",
                "application/json",
                "--body",
                path_str(&scratch.join(body)),
                "--target-variant",
                variant,
            ]);
            let answer: Value = serde_json::from_str(&answer).unwrap();
            let values: Vec<f64> = answer["predictions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|prediction| prediction["values"][0].as_f64().unwrap())
                .collect();
            assert_eq!(values, want, "{body} to variant {variant}");
        }
    }
    // Without a target the weights pick a variant; the answer names it and matches its model.
    let output =
        server.cli(&["endpoint", "invoke", "credit", "--body", path_str(&scratch.join("rows.csv")), "--show-variant"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let variant = stderr(&output).trim().strip_prefix("variant: ").unwrap().to_string();
    let model = if variant == "a" { "m-logistic" } else { "m-base" };
    assert!(variant == "a" || variant == "b", "{variant}");
    assert_eq!(csv_values(&stdout(&output)), &expected(model)[..count]);

    // The default body limit is 6 MiB.
    let line = format!("{}\n", rows().csv_line(0, &fields));
    let oversized = line.repeat(6 * 1024 * 1024 / line.len() + 1);
    let request = http_request("POST", "/endpoints/credit/invocations", &[CSV], oversized.as_bytes());
    let (status, _, body) = raw_exchange(&server.address, &request).unwrap();
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));

    // Update to a one-variant config; the answers then come from it.
    server.cli_ok(&["endpoint-config", "create", "--name", "one-variant", "--variant", "name=c,model=m-logistic"]);
    let updated = server.cli_json(&["endpoint", "update", "--name", "credit", "--config", "one-variant", "--wait"]);
    assert_eq!(updated["status"], "InService", "{updated}");
    assert_eq!(updated["config"], "one-variant");
    assert_eq!(updated["variants"][0]["name"], "c");
    let output =
        server.cli(&["endpoint", "invoke", "credit", "--body", path_str(&scratch.join("rows.csv")), "--show-variant"]);
    assert_eq!(stderr(&output).trim(), "variant: c");
    assert_eq!(csv_values(&stdout(&output)), &expected("m-logistic")[..count]);
    // A serving variant's weight and instance count change in place.
    let changed = server.cli_json(&[
        "endpoint",
        "update-variant",
        "--name",
        "credit",
        "--variant",
        "c",
        "--weight",
        "2",
        "--instances",
        "2",
    ]);
    assert_eq!(
        (changed["variants"][0]["weight"].as_f64(), changed["variants"][0]["instances"].as_u64()),
        (Some(2.0), Some(2))
    );

    // What is in use cannot be deleted; errors print the server's code and exit non-zero.
    let refused = server.cli(&["model", "delete", "m-logistic"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("in_use: "), "{}", stderr(&refused));
    let refused = server.cli(&["endpoint-config", "delete", "one-variant"]);
    assert!(stderr(&refused).contains("in_use: "), "{}", stderr(&refused));
    let missing = server.cli(&["endpoint", "describe", "nothing-here"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("not_found: "), "{}", stderr(&missing));

    let deleted = server.cli(&["endpoint", "delete", "credit", "--wait"]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert!(stderr(&deleted).contains("deleted"), "{}", stderr(&deleted));
    let gone = server.cli(&["endpoint", "describe", "credit"]);
    assert!(stderr(&gone).contains("not_found: "), "{}", stderr(&gone));
    server.cli_ok(&["endpoint-config", "delete", "one-variant"]);
    server.cli_ok(&["endpoint-config", "delete", "two-variants"]);
    server.cli_ok(&["model", "delete", "m-logistic"]);
    server.cli_ok(&["model", "delete", "m-base"]);
    assert_eq!(server.cli_json(&["model", "list"]), json!([]));
}

#[test]
fn client_commands_name_an_unreachable_server() {
    let output = riskserve(&["endpoint", "list", "--url", "http://127.0.0.1:9"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cannot reach riskserve at http://127.0.0.1:9/api/v1/endpoints"),
        "{}",
        stderr(&output)
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Updates under load.

/// One invocation seen by a load thread.
struct Seen {
    started: Instant,
    status: u16,
    variant: Option<String>,
    row: usize,
    body: String,
}

/// A variant of a config: (name, model, weight).
type Variant<'a> = (&'a str, &'a str, f64);

#[test]
fn updates_under_load_fail_no_request_and_switch_variants() {
    const UPDATES: usize = 4;
    const THREADS: usize = 3;
    let scratch = Scratch::new("load");
    let server = Server::start(&scratch.join("data"));
    for (model, _) in MODELS {
        server.create_model(model, &model_file(model));
    }
    let fields = server.inputs("m-logistic");
    // Variant names are unique across configs, so each answer tells which config served it.
    let configs: [(&str, Vec<Variant>); 4] = [
        ("config-0", vec![("v0-logistic", "m-logistic", 1.0), ("v0-base", "m-base", 1.0)]),
        ("config-1", vec![("v1-logitraw", "m-logitraw", 1.0)]),
        ("config-2", vec![("v2-base", "m-base", 1.0), ("v2-logitraw", "m-logitraw", 3.0)]),
        ("config-3", vec![("v3-logistic", "m-logistic", 1.0)]),
    ];
    let mut model_of_variant = HashMap::new();
    for (name, variants) in &configs {
        server.create_config(name, variants);
        for (variant, model, _) in variants {
            model_of_variant.insert(variant.to_string(), model.to_string());
        }
    }
    let created = server.post_json("/api/v1/endpoints", &json!({"name": "busy", "config": "config-0"}));
    assert_eq!(created.status, 201, "{}", created.text());
    server.wait_in_service("busy", "config-0");

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let lines: Arc<Vec<String>> =
        Arc::new((0..rows().cells.len()).map(|index| rows().csv_line(index, &fields)).collect());
    let positional: Arc<Vec<Value>> =
        Arc::new((0..rows().cells.len()).map(|index| rows().json_positional(index, &fields)).collect());
    let load: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (stop, answered, lines, positional) =
                (Arc::clone(&stop), Arc::clone(&answered), Arc::clone(&lines), Arc::clone(&positional));
            let url = server.url();
            std::thread::spawn(move || {
                let agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .build()
                    .new_agent();
                let mut seen = Vec::new();
                let mut index = thread * 7;
                // Bounded in count as well as by the main thread's stop flag.
                while !stop.load(Ordering::Relaxed) && seen.len() < 200_000 {
                    let row = index % lines.len();
                    let started = Instant::now();
                    let result = if index % 2 == 0 {
                        send(
                            &agent,
                            &url,
                            "POST",
                            "/endpoints/busy/invocations",
                            Some("text/csv"),
                            lines[row].as_bytes(),
                            &[],
                        )
                    } else {
                        let body = json!({"instances": [positional[row]]}).to_string();
                        send(
                            &agent,
                            &url,
                            "POST",
                            "/endpoints/busy/invocations",
                            Some("application/json"),
                            body.as_bytes(),
                            &[],
                        )
                    };
                    let (status, variant, body) = match result {
                        Ok(reply) => (reply.status, reply.variant.clone(), reply.text()),
                        Err(error) => (0, None, error),
                    };
                    seen.push(Seen { started, status, variant, row, body });
                    answered.fetch_add(1, Ordering::Relaxed);
                    index += 1;
                }
                seen
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(60);
    // (config, when the update was sent, when it was seen InService): answers begun in between may come from
    // either config; answers begun after the switch was seen must come from the new one.
    let mut timeline: Vec<(usize, Instant, Instant)> = vec![(0, Instant::now(), Instant::now())];
    let wait_for_answers = |count: usize| {
        let target = answered.load(Ordering::Relaxed) + count;
        while answered.load(Ordering::Relaxed) < target && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for_answers(60);
    for update in 0..UPDATES {
        let next = (update + 1) % configs.len();
        let sent = Instant::now();
        let reply = server.send(
            "PUT",
            "/api/v1/endpoints/busy",
            Some("application/json"),
            json!({"config": configs[next].0}).to_string().as_bytes(),
            &[],
        );
        assert_eq!(reply.status, 200, "update {update}: {}", reply.text());
        server.wait_in_service("busy", configs[next].0);
        timeline.push((next, sent, Instant::now()));
        wait_for_answers(60);
        assert!(Instant::now() < deadline, "the updates took more than 60 s\nserver log:\n{}", server.log());
    }
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<Seen> = load.into_iter().flat_map(|thread| thread.join().unwrap()).collect();

    let failed: Vec<String> = seen
        .iter()
        .filter(|seen| seen.status != 200)
        .take(5)
        .map(|seen| format!("status {} for row {}: {}", seen.status, seen.row, seen.body))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} invocations failed, e.g. {failed:#?}",
        seen.iter().filter(|s| s.status != 200).count(),
        seen.len()
    );
    for (step, (config, _, switched)) in timeline.iter().enumerate() {
        let window_end = timeline.get(step + 1).map(|(_, sent, _)| *sent);
        let allowed: BTreeSet<&str> = configs[*config].1.iter().map(|(variant, _, _)| *variant).collect();
        let in_window: Vec<&Seen> = seen
            .iter()
            .filter(|seen| seen.started > *switched && window_end.is_none_or(|end| seen.started < end))
            .collect();
        assert!(!in_window.is_empty(), "no invocation ran while {} was live", configs[*config].0);
        for seen in in_window {
            let variant = seen.variant.as_deref().unwrap_or("(none)");
            assert!(
                allowed.contains(variant),
                "after the switch to {}, variant {variant} answered",
                configs[*config].0
            );
        }
    }
    // Every answer, whichever variant gave it, is that variant's model's value for the row.
    for seen in &seen {
        let variant = seen.variant.as_deref().expect("every answer names its variant");
        let want = expected(&model_of_variant[variant])[seen.row];
        let got = if seen.body.starts_with('{') {
            serde_json::from_str::<Value>(&seen.body).unwrap()["predictions"][0]["values"][0].as_f64().unwrap()
        } else {
            csv_values(&seen.body)[0]
        };
        assert_eq!(got, want, "row {} from variant {variant}", seen.row);
    }
    let during_switches = seen
        .iter()
        .filter(|seen| {
            timeline.iter().skip(1).any(|(_, sent, switched)| seen.started >= *sent && seen.started <= *switched)
        })
        .count();
    eprintln!(
        "{} invocations during {UPDATES} updates ({during_switches} begun while an update was deploying), none failed",
        seen.len()
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Crash safety.

const TRANSITIONAL: [&str; 4] = ["Creating", "Updating", "RollingBack", "Deleting"];
/// The requests `crash_script` sends: one upload per model and a large blob, then its sequence.
const CRASH_SCRIPT_STEPS: usize = MODELS.len() + 1 + 15;
/// Large enough that a kill often lands while it is being written.
const CRASH_BLOB_BYTES: usize = 8 << 20;

/// The scripted sequence of the crash test, counting the requests sent in `steps_done`; it stops at the first
/// request that gets no answer (the kill).
fn crash_script(url: &str, upload: &[(String, Vec<u8>)], steps_done: &AtomicUsize, observed: &Mutex<Observed>) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let json_request = |method: &str, path: &str, body: Value| -> Result<Reply, String> {
        send(&agent, url, method, path, Some("application/json"), body.to_string().as_bytes(), &[])
    };
    let mut digests = Vec::new();
    let step = |result: Result<Reply, String>| -> Result<Reply, String> {
        steps_done.fetch_add(1, Ordering::Relaxed);
        result
    };
    for (file_name, bytes) in upload {
        let Ok(reply) =
            step(send(&agent, url, "PUT", "/api/v1/artifacts", Some("application/octet-stream"), bytes, &[]))
        else {
            return;
        };
        let Ok(answer) = serde_json::from_slice::<Value>(&reply.body) else { return };
        digests.push((file_name.clone(), answer["digest"].clone()));
    }
    let model = |index: usize| {
        let (file_name, digest) = &digests[index];
        json!({"name": MODELS[index].0, "artifacts": [{"name": file_name, "digest": digest}]})
    };
    let sequence: Vec<(&str, String, Value)> = vec![
        ("POST", "/api/v1/models".into(), model(0)),
        ("POST", "/api/v1/models".into(), model(1)),
        (
            "POST",
            "/api/v1/endpoint-configs".into(),
            json!({"name": "cfg-a", "variants": [{"name": "a", "model": "m-logistic"}]}),
        ),
        (
            "POST",
            "/api/v1/endpoint-configs".into(),
            json!({"name": "cfg-b", "variants": [{"name": "b", "model": "m-base", "instances": 2}]}),
        ),
        ("POST", "/api/v1/endpoints".into(), json!({"name": "e1", "config": "cfg-a"})),
        ("POST", "/api/v1/endpoints".into(), json!({"name": "e2", "config": "cfg-b"})),
        ("PUT", "/api/v1/endpoints/e1".into(), json!({"config": "cfg-b"})),
        ("POST", "/api/v1/models".into(), model(2)),
        (
            "POST",
            "/api/v1/endpoint-configs".into(),
            json!({"name": "cfg-c", "variants": [{"name": "c1", "model": "m-logitraw"}, {"name": "c2", "model": "m-logistic"}]}),
        ),
        ("POST", "/api/v1/endpoints".into(), json!({"name": "e3", "config": "cfg-c"})),
        ("DELETE", "/api/v1/endpoints/e2".into(), Value::Null),
        ("PUT", "/api/v1/endpoints/e1".into(), json!({"config": "cfg-c"})),
        ("PUT", "/api/v1/endpoints/e3".into(), json!({"config": "cfg-a"})),
        ("DELETE", "/api/v1/endpoints/e1".into(), Value::Null),
        ("POST", "/api/v1/endpoints".into(), json!({"name": "e4", "config": "cfg-b"})),
    ];
    assert_eq!(upload.len() + sequence.len(), CRASH_SCRIPT_STEPS);
    for (method, path, body) in sequence {
        if method == "DELETE" {
            observed.lock().unwrap().deletes_sent.insert(path.rsplit('/').next().unwrap().to_string());
        }
        let result = if method == "DELETE" {
            send(&agent, url, "DELETE", &path, None, b"", &[])
        } else {
            json_request(method, &path, body.clone())
        };
        // A 409 (`invalid_state`) while an earlier change is still in progress is a valid answer; retry briefly.
        let mut result = step(result);
        for _ in 0..50 {
            match &result {
                Ok(reply) if reply.status == 409 => {
                    std::thread::sleep(Duration::from_millis(10));
                    result = if method == "DELETE" {
                        send(&agent, url, "DELETE", &path, None, b"", &[])
                    } else {
                        json_request(method, &path, body.clone())
                    };
                }
                _ => break,
            }
        }
        if result.is_err() {
            return;
        }
        // What is InService now must still be after a kill and a restart, unless a delete is sent for it later.
        let Ok(listing) = send(&agent, url, "GET", "/api/v1/endpoints", None, b"", &[]) else { return };
        let Ok(listing) = serde_json::from_slice::<Value>(&listing.body) else { return };
        let in_service = listing["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|endpoint| endpoint["status"] == "InService")
            .filter_map(|endpoint| endpoint["name"].as_str().map(str::to_string))
            .collect();
        observed.lock().unwrap().in_service = in_service;
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// What the crash script saw before the kill.
#[derive(Default)]
struct Observed {
    /// The endpoints InService in the last listing it read.
    in_service: BTreeSet<String>,
    /// The endpoints it sent a delete for.
    deletes_sent: BTreeSet<String>,
}

/// Every file named by a digest under the data dir holds bytes with that digest; no temporary upload survives.
fn check_artifact_files(data_dir: &Path, context: &str) -> BTreeSet<String> {
    use sha2::{Digest, Sha256};
    let mut found = BTreeSet::new();
    let mut folders = vec![data_dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            let parent = folder.file_name().and_then(|name| name.to_str()).unwrap_or_default();
            let name = entry.file_name().to_string_lossy().into_owned();
            if parent == "tmp" {
                panic!("{context}: a temporary upload survived recovery: {}", path.display());
            }
            if parent == "sha256" {
                let bytes = std::fs::read(&path).unwrap();
                let digest: String = Sha256::digest(&bytes).iter().map(|byte| format!("{byte:02x}")).collect();
                assert_eq!(name, digest, "{context}: {} does not hold the bytes its name promises", path.display());
                found.insert(format!("sha256:{digest}"));
            }
        }
    }
    found
}

#[test]
fn a_kill_at_any_point_recovers_to_a_consistent_state() {
    crash_at_random_points("embedded store", |_| Vec::new());
}

/// The same kills with the metadata on PostgreSQL (a schema of its own per run; artifacts stay in the data
/// directory's folder): what the embedded store promises holds on the server too.
#[test]
fn a_kill_at_any_point_recovers_to_a_consistent_state_on_postgres() {
    let Some(server) = postgres_server_url("a_kill_at_any_point_recovers_to_a_consistent_state_on_postgres") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let schemas = Mutex::new(Vec::new());
    crash_at_random_points("PostgreSQL", |run| {
        let name = format!("crash_{}_{run}", std::process::id());
        runtime.block_on(postgres_execute(&server, &format!("CREATE SCHEMA {name}")));
        schemas.lock().unwrap().push(name.clone());
        let separator = if server.contains('?') { '&' } else { '?' };
        vec![("RISKSERVE_STORE".to_string(), format!("{server}{separator}options=-c%20search_path%3D{name}"))]
    });
    for name in schemas.into_inner().unwrap() {
        runtime.block_on(postgres_execute(&server, &format!("DROP SCHEMA {name} CASCADE")));
    }
}

/// The test PostgreSQL server's URL (`scripts/with_postgres.sh` sets it); `None` after saying so loudly outside
/// CI, a failure under CI.
fn postgres_server_url(test: &str) -> Option<String> {
    match std::env::var("RISKSERVE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let message = "RISKSERVE_TEST_POSTGRES_URL is not set: run under scripts/with_postgres.sh \
                           (bash scripts/with_postgres.sh cargo test -p riskserve-cli --test server)";
            assert!(!std::env::var("CI").is_ok_and(|value| !value.is_empty()), "{test}: {message}");
            eprintln!("*** SKIPPED *** {test}: {message}");
            None
        }
    }
}

async fn postgres_execute(server: &str, statement: &str) {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(server).await.expect("connect to the test PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string())).execute(&mut connection).await.expect(statement);
    connection.close().await.expect("close");
}

/// Kills the server at random points of a script of creates, updates and deletes, restarts it on the same state
/// (`store_of_run` gives each run's environment: where its metadata lives), and checks that what was acknowledged
/// survived and everything is consistent.
fn crash_at_random_points(store: &str, mut store_of_run: impl FnMut(u64) -> Vec<(String, String)>) {
    let runs: u64 = std::env::var("RISKSERVE_CRASH_RUNS").ok().and_then(|runs| runs.parse().ok()).unwrap_or(20);
    let seed: u64 =
        std::env::var("RISKSERVE_CRASH_SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
        });
    eprintln!("crash test on the {store}: seed {seed} (RISKSERVE_CRASH_SEED={seed} repeats it), {runs} runs");
    let mut random = Random(seed);
    let scratch = Scratch::new(&format!("crash-{}", store.replace(" ", "-")));
    let upload: Vec<(String, Vec<u8>)> = MODELS
        .iter()
        .map(|(name, _)| {
            let path = model_file(name);
            (path.file_name().unwrap().to_str().unwrap().to_string(), std::fs::read(&path).unwrap())
        })
        .chain(std::iter::once((
            "blob".to_string(),
            (0..CRASH_BLOB_BYTES).map(|index| (Random(index as u64 + 1).next() >> 32) as u8).collect(),
        )))
        .collect();
    let all_fields = {
        // Every model of the script takes the same columns; their order comes from the first model's inputs.
        let probe = Server::start(&scratch.join("probe"));
        probe.create_model("m-logistic", &model_file("m-logistic"));
        probe.inputs("m-logistic")
    };

    // Run 0 lets the script finish (the kill then lands on background work, if any); every other run kills
    // once the script has sent a random number of its requests, plus a random delay of up to 3 ms, so that the
    // kill points spread over every step whatever the machine's speed.
    for run in 0..=runs {
        let data_dir = scratch.join(format!("run-{run}"));
        let environment = store_of_run(run);
        let environment: Vec<(&str, &str)> =
            environment.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        let mut server = Server::start_with(&data_dir, &environment);
        let steps = Arc::new(AtomicUsize::new(0));
        let observed = Arc::new(Mutex::new(Observed::default()));
        let script = {
            let (url, upload, steps, observed) =
                (server.url(), upload.clone(), Arc::clone(&steps), Arc::clone(&observed));
            std::thread::spawn(move || crash_script(&url, &upload, &steps, &observed))
        };
        let (target_step, delay) = if run == 0 {
            (CRASH_SCRIPT_STEPS, Duration::ZERO)
        } else {
            (random.below(CRASH_SCRIPT_STEPS as u64 + 1) as usize, Duration::from_micros(random.below(3000)))
        };
        let waiting = Instant::now();
        while steps.load(Ordering::Relaxed) < target_step && !script.is_finished() {
            assert!(waiting.elapsed() < Duration::from_secs(60), "run {run}: the script stalled\n{}", server.log());
            std::thread::sleep(Duration::from_micros(100));
        }
        std::thread::sleep(if run == 0 { Duration::from_millis(random.below(50)) } else { delay });
        let context = format!(
            "{store}, run {run} (seed {seed}): killed at step {} of {CRASH_SCRIPT_STEPS} (+{delay:?})",
            steps.load(Ordering::Relaxed)
        );
        server.kill();
        script.join().expect("the crash script does not panic");

        let server = Server::start_with(&data_dir, &environment);
        let endpoints = {
            let start = Instant::now();
            loop {
                let list = server.get("/api/v1/endpoints");
                assert_eq!(list.status, 200, "{context}: {}", list.text());
                let list = list.json();
                let items = list["items"].as_array().unwrap().clone();
                if items.iter().all(|endpoint| !TRANSITIONAL.contains(&endpoint["status"].as_str().unwrap_or(""))) {
                    break items;
                }
                assert!(start.elapsed() < Duration::from_secs(30), "{context}: recovery did not finish: {list}");
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        let summary: Vec<String> =
            endpoints.iter().map(|endpoint| format!("{} {}", endpoint["name"], endpoint["status"])).collect();
        eprintln!("crash test: {context}; after recovery: [{}]", summary.join(", "));
        let observed = observed.lock().unwrap();
        for name in observed.in_service.difference(&observed.deletes_sent) {
            let serving =
                endpoints.iter().any(|endpoint| endpoint["name"] == name.as_str() && endpoint["status"] == "InService");
            assert!(
                serving,
                "{context}: endpoint {name} was InService before the kill, not after recovery: {endpoints:?}"
            );
        }
        for endpoint in &endpoints {
            let status = endpoint["status"].as_str().unwrap();
            assert!(status == "InService" || status == "Failed", "{context}: {endpoint}");
            if status != "InService" {
                continue;
            }
            // Each variant answers what its model answers, from the artifacts already stored.
            for variant in endpoint["variants"].as_array().unwrap() {
                let (variant_name, model) = (variant["name"].as_str().unwrap(), variant["model"].as_str().unwrap());
                let row = random.below(rows().cells.len() as u64) as usize;
                let reply = server.send(
                    "POST",
                    &format!("/endpoints/{}/invocations", endpoint["name"].as_str().unwrap()),
                    Some("text/csv"),
                    rows().csv_line(row, &all_fields).as_bytes(),
                    &[("X-Amzn-SageMaker-Target-Variant", variant_name)],
                );
                assert_eq!(reply.status, 200, "{context}: {endpoint}: {}", reply.text());
                assert_eq!(csv_values(&reply.text()), [expected(model)[row]], "{context}: {endpoint}");
            }
        }
        let stored = check_artifact_files(&data_dir, &context);
        let models = server.get("/api/v1/models").json();
        for model in models["items"].as_array().unwrap() {
            let name = model["name"].as_str().unwrap();
            for artifact in model["artifacts"].as_array().unwrap() {
                let digest = artifact["digest"].as_str().unwrap();
                assert!(stored.contains(digest), "{context}: model {name}'s artifact {digest} is not stored");
            }
            // The model still loads: deploy it on a fresh endpoint and score a row.
            let probe = format!("probe-{name}");
            server.create_config(&probe, &[("p", name, 1.0)]);
            let created = server.post_json("/api/v1/endpoints", &json!({"name": probe, "config": probe}));
            assert_eq!(created.status, 201, "{context}: {}", created.text());
            server.wait_in_service(&probe, &probe);
            let reply = server.send(
                "POST",
                &format!("/endpoints/{probe}/invocations"),
                Some("text/csv"),
                rows().csv_line(0, &all_fields).as_bytes(),
                &[],
            );
            assert_eq!(reply.status, 200, "{context}: {}", reply.text());
            assert_eq!(csv_values(&reply.text()), [expected(name)[0]], "{context}: model {name}");
        }
        // Configs only name models that exist.
        let model_names: BTreeSet<String> = models["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|model| model["name"].as_str().unwrap().to_string())
            .collect();
        for config in server.get("/api/v1/endpoint-configs").json()["items"].as_array().unwrap() {
            for variant in config["variants"].as_array().unwrap() {
                assert!(model_names.contains(variant["model"].as_str().unwrap()), "{context}: {config}");
            }
        }
        drop(server);
        let _ = std::fs::remove_dir_all(&data_dir);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Malformed requests.

/// A raw HTTP/1.1 exchange on a fresh connection: the request bytes as given, the answer read to its end.
fn raw_exchange(address: &str, request: &[u8]) -> Result<(u16, String, Vec<u8>), String> {
    raw_exchange_closing(address, request, false)
}

/// `raw_exchange`, closing the sending side after the request when `close_write` (a client that gave up).
fn raw_exchange_closing(address: &str, request: &[u8], close_write: bool) -> Result<(u16, String, Vec<u8>), String> {
    let mut stream = TcpStream::connect(address).map_err(|error| error.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may answer (413) before reading a large body: a failed write is fine, the answer is what counts.
    let reader = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            answer
        })
    };
    let _ = stream.write_all(request);
    let _ = stream.flush();
    if close_write {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let answer = reader.join().unwrap();
    let text_end = answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| format!("no complete answer ({} bytes): {}", answer.len(), String::from_utf8_lossy(&answer)))?;
    let head = String::from_utf8_lossy(&answer[..text_end]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    let mut body = answer[text_end + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Ok((status, head, body))
}

fn dechunk(mut chunked: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(line_end) = chunked.windows(2).position(|window| window == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&chunked[..line_end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        body.extend_from_slice(&chunked[start..(start + size).min(chunked.len())]);
        chunked = &chunked[(start + size + 2).min(chunked.len())..];
    }
    body
}

/// A request with a correct Content-Length.
fn http_request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("authorization")) {
        request.push_str(&format!("Authorization: Bearer {ADMIN_TOKEN}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// The administrator's bearer token of every test server (`RISKSERVE_ADMIN_TOKEN`, `RISKSERVE_TOKEN`).
const ADMIN_TOKEN: &str = "rsk_test-admin-token-0123456789abcdef";

const JSON: (&str, &str) = ("Content-Type", "application/json");
const CSV: (&str, &str) = ("Content-Type", "text/csv");

/// One malformed request and the answer it must get.
struct Case {
    what: &'static str,
    request: Vec<u8>,
    status: u16,
    code: &'static str,
}

fn case(
    what: &'static str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl AsRef<[u8]>,
    status: u16,
    code: &'static str,
) -> Case {
    Case { what, request: http_request(method, path, headers, body.as_ref()), status, code }
}

#[test]
fn malformed_requests_get_stable_json_errors_and_the_server_keeps_serving() {
    const BODY_LIMIT: usize = 64 * 1024;
    const ARTIFACT_LIMIT: usize = 512 * 1024;
    let scratch = Scratch::new("malformed");
    let (body_limit, artifact_limit) = (BODY_LIMIT.to_string(), ARTIFACT_LIMIT.to_string());
    let server = Server::start_with(
        &scratch.join("data"),
        &[("RISKSERVE_MAX_BODY_BYTES", &body_limit), ("RISKSERVE_MAX_ARTIFACT_BYTES", &artifact_limit)],
    );
    let model = server.create_model("m-logistic", &model_file("m-logistic"));
    let digest = model["artifacts"][0]["digest"].as_str().unwrap().to_string();
    server.create_model("m-categorical", &fixtures().join(CATEGORICAL_MODEL));
    server.create_config("cfg", &[("a", "m-logistic", 1.0)]);
    server.create_config("cfg-categorical", &[("a", "m-categorical", 1.0)]);
    server.create_config("cfg-unused", &[("a", "m-logistic", 1.0)]);
    // The German Credit scorecard example: every field required, out-of-range values and unknown categories
    // rejected by its pipeline.
    let scorecard_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/german-credit/scorecard");
    server.create_pipeline_model(
        "m-scorecard",
        &scorecard_dir.join("scorecard.pmml"),
        &scorecard_dir.join("pipeline.json"),
    );
    server.create_config("cfg-scorecard", &[("a", "m-scorecard", 1.0)]);
    for (endpoint, config) in [("credit", "cfg"), ("categorical", "cfg-categorical"), ("scorecard", "cfg-scorecard")] {
        let created = server.post_json("/api/v1/endpoints", &json!({"name": endpoint, "config": config}));
        assert_eq!(created.status, 201, "{}", created.text());
        server.wait_in_service(endpoint, config);
    }
    let fields = server.inputs("m-logistic");
    let good_row = rows().csv_line(0, &fields);
    let width = fields.len();
    let numbers = |value: &str| vec![value; width].join(",");
    let categorical_fields = server.inputs("m-categorical");
    let categorical_row: Vec<String> = {
        let text = std::fs::read_to_string(fixtures().join("xgb3/xgb3_categorical.input.csv")).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let first: Vec<&str> = lines.next().unwrap().split(',').collect();
        categorical_fields
            .iter()
            .map(|field| first[header.iter().position(|name| name == field).unwrap()].to_string())
            .collect()
    };
    let unknown_category = {
        let mut row = categorical_row.clone();
        let purpose = categorical_fields.iter().position(|field| field == "purpose").unwrap();
        row[purpose] = "spaceship".into();
        row.join(",")
    };
    // A good scorecard row in the pipeline's field order, and variants of it with one cell changed.
    let scorecard_fields = server.inputs("m-scorecard");
    let scorecard_row: Vec<String> = {
        let mut reader = csv::Reader::from_path(scorecard_dir.join("input.csv")).unwrap();
        let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
        let first = reader.records().next().unwrap().unwrap();
        scorecard_fields
            .iter()
            .map(|field| first[header.iter().position(|name| name == field).unwrap()].to_string())
            .collect()
    };
    let scorecard_with = |field: &str, value: &str| -> String {
        let mut row = scorecard_row.clone();
        row[scorecard_fields.iter().position(|name| name == field).unwrap()] = value.to_string();
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&row).unwrap();
        String::from_utf8(writer.into_inner().unwrap()).unwrap()
    };
    let scorecard_invocations = "/endpoints/scorecard/invocations";
    let pipeline_digest = |bytes: &[u8]| {
        let reply = server.send("PUT", "/api/v1/artifacts", Some("application/octet-stream"), bytes, &[]);
        assert_eq!(reply.status, 201, "{}", reply.text());
        reply.json()["digest"].as_str().unwrap().to_string()
    };
    let scorecard_pipeline = pipeline_digest(&std::fs::read(scorecard_dir.join("pipeline.json")).unwrap());
    let garbage_pipeline = pipeline_digest(b"{\"version\": 1, \"features\": ");
    let long_name = "a".repeat(64);
    let model_body =
        |name: &str| json!({"name": name, "artifacts": [{"name": "model.json", "digest": digest}]}).to_string();
    let invocations = "/endpoints/credit/invocations";
    let over_limit = vec![b'1'; BODY_LIMIT + 1];
    let artifact_over_limit = vec![b'1'; ARTIFACT_LIMIT + 1];
    let not_a_model = b"this is not a model file".to_vec();
    let not_a_model_digest = {
        use sha2::{Digest, Sha256};
        let reply = server.send("PUT", "/api/v1/artifacts", Some("application/octet-stream"), &not_a_model, &[]);
        assert_eq!(reply.status, 201);
        let hex: String = Sha256::digest(&not_a_model).iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(reply.json()["digest"], format!("sha256:{hex}"));
        format!("sha256:{hex}")
    };
    let missing_digest = format!("sha256:{}", "0".repeat(64));

    let cases = vec![
        // Models.
        case("model: body is not JSON", "POST", "/api/v1/models", &[JSON], "{", 400, "validation_error"),
        case("model: body is a JSON array", "POST", "/api/v1/models", &[JSON], "[]", 400, "validation_error"),
        case("model: body is empty", "POST", "/api/v1/models", &[JSON], "", 400, "validation_error"),
        case("model: text/plain body", "POST", "/api/v1/models", &[("Content-Type", "text/plain")], model_body("x"), 415, "unsupported_media_type"),
        case("model: no content type", "POST", "/api/v1/models", &[], model_body("x"), 415, "unsupported_media_type"),
        case("model: no name", "POST", "/api/v1/models", &[JSON], json!({"artifacts": [{"name": "m.json", "digest": digest}]}).to_string(), 400, "validation_error"),
        case("model: name is a number", "POST", "/api/v1/models", &[JSON], json!({"name": 5, "artifacts": []}).to_string(), 400, "validation_error"),
        case("model: name starts with a hyphen", "POST", "/api/v1/models", &[JSON], model_body("-credit"), 400, "validation_error"),
        case("model: name ends with a hyphen", "POST", "/api/v1/models", &[JSON], model_body("credit-"), 400, "validation_error"),
        case("model: name has an underscore", "POST", "/api/v1/models", &[JSON], model_body("credit_v2"), 400, "validation_error"),
        case("model: name has a space", "POST", "/api/v1/models", &[JSON], model_body("credit v2"), 400, "validation_error"),
        case("model: name is empty", "POST", "/api/v1/models", &[JSON], model_body(""), 400, "validation_error"),
        case("model: name of 64 characters", "POST", "/api/v1/models", &[JSON], model_body(&long_name), 400, "validation_error"),
        case("model: name is not ASCII", "POST", "/api/v1/models", &[JSON], model_body("crédit"), 400, "validation_error"),
        case("model: duplicate name", "POST", "/api/v1/models", &[JSON], model_body("m-logistic"), 409, "already_exists"),
        case("model: no artifacts and no URL", "POST", "/api/v1/models", &[JSON], json!({"name": "x"}).to_string(), 400, "validation_error"),
        case("model: empty artifact list", "POST", "/api/v1/models", &[JSON], json!({"name": "x", "artifacts": []}).to_string(), 400, "validation_error"),
        case("model: digest is not sha256", "POST", "/api/v1/models", &[JSON], json!({"name": "x", "artifacts": [{"name": "m.json", "digest": "md5:abc"}]}).to_string(), 400, "validation_error"),
        case("model: digest never uploaded", "POST", "/api/v1/models", &[JSON], json!({"name": "x", "artifacts": [{"name": "m.json", "digest": missing_digest}]}).to_string(), 404, "not_found"),
        case("model: artifact is not a model", "POST", "/api/v1/models", &[JSON], json!({"name": "x", "artifacts": [{"name": "m.json", "digest": not_a_model_digest}]}).to_string(), 400, "invalid_artifact"),
        case("model: unknown format", "POST", "/api/v1/models", &[JSON], json!({"name": "x", "format": "xgboost-yaml", "artifacts": [{"name": "m.json", "digest": digest}]}).to_string(), 400, "validation_error"),
        case("model: artifact URL of a missing file", "POST", "/api/v1/models", &[JSON], json!({"name": "x", "artifact_url": "file:///nonexistent/riskserve/model.json"}).to_string(), 400, "invalid_artifact"),
        case("model: artifact URL over http", "POST", "/api/v1/models", &[JSON], json!({"name": "x", "artifact_url": "http://127.0.0.1/model.json"}).to_string(), 400, "validation_error"),
        case("model: tags are not an object", "POST", "/api/v1/models", &[JSON], json!({"name": "x", "tags": ["a"], "artifacts": [{"name": "m.json", "digest": digest}]}).to_string(), 400, "validation_error"),
        case("model: pipeline digest never uploaded", "POST", "/api/v1/models", &[JSON], json!({"name": "x", "pipeline": missing_digest, "artifacts": [{"name": "m.json", "digest": digest}]}).to_string(), 404, "not_found"),
        case("model: describe a missing one", "GET", "/api/v1/models/nothing", &[], "", 404, "not_found"),
        case("model: delete a missing one", "DELETE", "/api/v1/models/nothing", &[], "", 404, "not_found"),
        case("model: delete one in use", "DELETE", "/api/v1/models/m-logistic", &[], "", 409, "in_use"),
        case("model: list with max_results not a number", "GET", "/api/v1/models?max_results=many", &[], "", 400, "validation_error"),
        case("model: list with a negative max_results", "GET", "/api/v1/models?max_results=-1", &[], "", 400, "validation_error"),
        // Artifacts.
        case("artifact: body over the limit", "PUT", "/api/v1/artifacts", &[("Content-Type", "application/octet-stream")], &artifact_over_limit, 413, "payload_too_large"),
        // Endpoint configs.
        case("config: body is not JSON", "POST", "/api/v1/endpoint-configs", &[JSON], "{\"name\": ", 400, "validation_error"),
        case("config: no variants", "POST", "/api/v1/endpoint-configs", &[JSON], json!({"name": "x", "variants": []}).to_string(), 400, "validation_error"),
        case("config: variant of a missing model", "POST", "/api/v1/endpoint-configs", &[JSON], json!({"name": "x", "variants": [{"name": "a", "model": "nothing"}]}).to_string(), 404, "not_found"),
        case("config: duplicate variant names", "POST", "/api/v1/endpoint-configs", &[JSON], json!({"name": "x", "variants": [{"name": "a", "model": "m-logistic"}, {"name": "a", "model": "m-logistic"}]}).to_string(), 400, "validation_error"),
        case("config: negative weight", "POST", "/api/v1/endpoint-configs", &[JSON], json!({"name": "x", "variants": [{"name": "a", "model": "m-logistic", "weight": -1.0}]}).to_string(), 400, "validation_error"),
        case("config: weight NaN (not JSON)", "POST", "/api/v1/endpoint-configs", &[JSON], r#"{"name": "x", "variants": [{"name": "a", "model": "m-logistic", "weight": NaN}]}"#, 400, "validation_error"),
        case("config: weight as text", "POST", "/api/v1/endpoint-configs", &[JSON], json!({"name": "x", "variants": [{"name": "a", "model": "m-logistic", "weight": "1"}]}).to_string(), 400, "validation_error"),
        case("config: zero instances", "POST", "/api/v1/endpoint-configs", &[JSON], json!({"name": "x", "variants": [{"name": "a", "model": "m-logistic", "instances": 0}]}).to_string(), 400, "validation_error"),
        case("config: bad variant name", "POST", "/api/v1/endpoint-configs", &[JSON], json!({"name": "x", "variants": [{"name": "a_b", "model": "m-logistic"}]}).to_string(), 400, "validation_error"),
        case("config: duplicate name", "POST", "/api/v1/endpoint-configs", &[JSON], json!({"name": "cfg", "variants": [{"name": "a", "model": "m-logistic"}]}).to_string(), 409, "already_exists"),
        case("config: describe a missing one", "GET", "/api/v1/endpoint-configs/nothing", &[], "", 404, "not_found"),
        case("config: delete one in use", "DELETE", "/api/v1/endpoint-configs/cfg", &[], "", 409, "in_use"),
        // Endpoints.
        case("endpoint: config missing", "POST", "/api/v1/endpoints", &[JSON], json!({"name": "x", "config": "nothing"}).to_string(), 404, "not_found"),
        case("endpoint: no config member", "POST", "/api/v1/endpoints", &[JSON], json!({"name": "x"}).to_string(), 400, "validation_error"),
        case("endpoint: bad name", "POST", "/api/v1/endpoints", &[JSON], json!({"name": "x.y", "config": "cfg"}).to_string(), 400, "validation_error"),
        case("endpoint: duplicate name", "POST", "/api/v1/endpoints", &[JSON], json!({"name": "credit", "config": "cfg-unused"}).to_string(), 409, "already_exists"),
        case("endpoint: update a missing one", "PUT", "/api/v1/endpoints/nothing", &[JSON], json!({"config": "cfg"}).to_string(), 404, "not_found"),
        case("endpoint: update to a missing config", "PUT", "/api/v1/endpoints/credit", &[JSON], json!({"config": "nothing"}).to_string(), 404, "not_found"),
        case("endpoint: update with a bad body", "PUT", "/api/v1/endpoints/credit", &[JSON], "{\"config\": 3}", 400, "validation_error"),
        case("endpoint: describe a missing one", "GET", "/api/v1/endpoints/nothing", &[], "", 404, "not_found"),
        case("endpoint: delete a missing one", "DELETE", "/api/v1/endpoints/nothing", &[], "", 404, "not_found"),
        // Invocations.
        case("invoke: missing endpoint", "POST", "/endpoints/nothing/invocations", &[CSV], &good_row, 404, "not_found"),
        case("invoke: text/plain body", "POST", invocations, &[("Content-Type", "text/plain")], &good_row, 415, "unsupported_media_type"),
        case("invoke: no content type", "POST", invocations, &[], &good_row, 415, "unsupported_media_type"),
        case("invoke: CSV with too few fields", "POST", invocations, &[CSV], "1,2,3\n", 400, "validation_error"),
        case("invoke: CSV with too many fields", "POST", invocations, &[CSV], format!("{good_row},1\n"), 400, "validation_error"),
        case("invoke: CSV with a word for a number", "POST", invocations, &[CSV], numbers("abc"), 400, "invalid_input"),
        case("invoke: CSV with a word in its second row", "POST", invocations, &[CSV], format!("{good_row}\n{}\n", numbers("x")), 400, "invalid_input"),
        case("invoke: CSV with a short second row", "POST", invocations, &[CSV], format!("{good_row}\n1,2\n"), 400, "validation_error"),
        case("invoke: CSV with its header line", "POST", invocations, &[CSV], format!("{}\n{good_row}\n", fields.join(",")), 400, "invalid_input"),
        case("invoke: CSV that is not UTF-8", "POST", invocations, &[CSV], b"\xff\xfe,1\n", 400, "validation_error"),
        case("invoke: empty CSV body", "POST", invocations, &[CSV], "", 400, "validation_error"),
        case("invoke: CSV with an unclosed quote", "POST", invocations, &[CSV], format!("\"{good_row}\n"), 400, "validation_error"),
        case("invoke: CSV body over the limit", "POST", invocations, &[CSV], &over_limit, 413, "payload_too_large"),
        case("invoke: JSON that is truncated", "POST", invocations, &[JSON], "{\"instances\": [[1, 2", 400, "validation_error"),
        case("invoke: JSON without instances", "POST", invocations, &[JSON], "{\"rows\": []}", 400, "validation_error"),
        case("invoke: JSON instances not a list", "POST", invocations, &[JSON], "{\"instances\": 5}", 400, "validation_error"),
        case("invoke: JSON row too short", "POST", invocations, &[JSON], "{\"instances\": [[1, 2]]}", 400, "validation_error"),
        case("invoke: JSON row with an object value", "POST", invocations, &[JSON], json!({"instances": [vec![json!({"a": 1}); width]]}).to_string(), 400, "validation_error"),
        case("invoke: JSON row that is a string", "POST", invocations, &[JSON], "{\"instances\": [\"a\"]}", 400, "validation_error"),
        case("invoke: JSON with no rows", "POST", invocations, &[JSON], "{\"instances\": []}", 400, "validation_error"),
        case("invoke: JSON row with an unknown field", "POST", invocations, &[JSON], json!({"instances": [{"no_such_field": 1}]}).to_string(), 400, "validation_error"),
        case("invoke: JSON with a word for a number", "POST", invocations, &[JSON], json!({"instances": [vec!["abc"; width]]}).to_string(), 400, "invalid_input"),
        case("invoke: JSON NaN literal", "POST", invocations, &[JSON], format!("{{\"instances\": [[{}]]}}", vec!["NaN"; width].join(",")), 400, "validation_error"),
        case("invoke: unknown category", "POST", "/endpoints/categorical/invocations", &[CSV], &unknown_category, 400, "invalid_input"),
        case("pipeline invoke: infinity in a numeric field", "POST", scorecard_invocations, &[CSV], scorecard_with("duration_in_month", "inf"), 400, "invalid_input"),
        case("pipeline invoke: NaN in a numeric field", "POST", scorecard_invocations, &[CSV], scorecard_with("credit_amount", "NaN"), 400, "invalid_input"),
        case("pipeline invoke: number out of range", "POST", scorecard_invocations, &[CSV], scorecard_with("duration_in_month", "500"), 400, "invalid_input"),
        case("pipeline invoke: required field empty", "POST", scorecard_invocations, &[CSV], scorecard_with("age_in_years", ""), 400, "invalid_input"),
        case("pipeline invoke: unknown category", "POST", scorecard_invocations, &[CSV], scorecard_with("purpose", "spaceship"), 400, "invalid_input"),
        case("pipeline invoke: JSON with infinity (1e999)", "POST", scorecard_invocations, &[JSON], "{\"instances\": [{\"duration_in_month\": 1e999}]}", 400, "invalid_input"),
        case("pipeline model: spec names a file not uploaded", "POST", "/api/v1/models", &[JSON], json!({"name": "x", "pipeline": scorecard_pipeline, "artifacts": [{"name": "other.pmml", "digest": digest}]}).to_string(), 400, "invalid_artifact"),
        case("pipeline model: spec is not a pipeline", "POST", "/api/v1/models", &[JSON], json!({"name": "x", "pipeline": garbage_pipeline, "artifacts": [{"name": "scorecard.pmml", "digest": digest}]}).to_string(), 400, "invalid_artifact"),
        case("invoke: unknown target variant", "POST", invocations, &[CSV, ("X-Amzn-SageMaker-Target-Variant", "nothing")], &good_row, 400, "validation_error"),
        case("invoke: empty target variant", "POST", invocations, &[CSV, ("X-Amzn-SageMaker-Target-Variant", "")], &good_row, 400, "validation_error"),
    ];
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let mut wrong = Vec::new();
    for case in &cases {
        match raw_exchange(&server.address, &case.request) {
            Err(error) => wrong.push(format!("{}: no answer: {error}", case.what)),
            Ok((status, head, body)) => {
                let error: Option<(String, String)> = serde_json::from_slice::<Value>(&body).ok().and_then(|value| {
                    Some((
                        value["error"]["code"].as_str()?.to_string(),
                        value["error"]["message"].as_str()?.to_string(),
                    ))
                });
                match error {
                    Some((code, message)) if status == case.status && code == case.code && !message.is_empty() => {
                        assert!(
                            head.to_ascii_lowercase().contains("content-type: application/json"),
                            "{}: {head}",
                            case.what
                        );
                        assert!(!message.ends_with('.'), "{}: message ends with a period: {message}", case.what);
                    }
                    _ => wrong.push(format!(
                        "{}: want {} {}, got {status} {}",
                        case.what,
                        case.status,
                        case.code,
                        String::from_utf8_lossy(&body)
                    )),
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} malformed requests got the wrong answer:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );

    // Framing errors: a body shorter than its Content-Length, then the connection closed; a method the path
    // does not take. The server must not answer with a server error.
    let mut truncated = http_request("POST", invocations, &[CSV], good_row.as_bytes());
    let cut = truncated.len() - 5;
    truncated.truncate(cut);
    if let Ok((status, _, body)) = raw_exchange_closing(&server.address, &truncated, true) {
        assert!((400..500).contains(&status), "truncated body: {status} {}", String::from_utf8_lossy(&body));
    }
    for (method, path) in [("PATCH", "/api/v1/models"), ("GET", invocations), ("DELETE", "/api/v1/artifacts")] {
        let (status, _, _) = raw_exchange(&server.address, &http_request(method, path, &[], b"")).unwrap();
        assert!((400..500).contains(&status), "{method} {path}: {status}");
    }

    // And the server still answers correctly.
    let reply = server.send("POST", invocations, Some("text/csv"), good_row.as_bytes(), &[]);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(csv_values(&reply.text()), [expected("m-logistic")[0]]);
    let endpoints = server.get("/api/v1/endpoints").json();
    let names: BTreeMap<&str, &str> = endpoints["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|endpoint| (endpoint["name"].as_str().unwrap(), endpoint["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        BTreeMap::from([("categorical", "InService"), ("credit", "InService"), ("scorecard", "InService")])
    );
    let reply = server.send(
        "POST",
        scorecard_invocations,
        Some("text/csv"),
        scorecard_with("age_in_years", "40").as_bytes(),
        &[],
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
}

// ---------------------------------------------------------------------------------------------------------------
// The demo.

/// Splits a POSIX shell command line made of plain words and single-quoted parts (what the demo prints).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut characters = line.chars();
    while let Some(character) = characters.next() {
        match character {
            '\'' => {
                let word = word.get_or_insert_with(String::new);
                for quoted in characters.by_ref() {
                    if quoted == '\'' {
                        break;
                    }
                    word.push(quoted);
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(characters.next()),
            ' ' | '\t' => words.extend(word.take()),
            other => word.get_or_insert_with(String::new).push(other),
        }
    }
    words.extend(word);
    words
}

/// Runs `riskserve demo` until it prints that it serves; returns the process and the lines it printed.
fn start_demo(port: u16, data_dir: &Path) -> (Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_riskserve"))
        .args(["demo", "--listen", &format!("127.0.0.1:{port}"), "--data-dir", path_str(data_dir)])
        .env("RISKSERVE_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("riskserve demo starts");
    let (sender, receiver) = mpsc::channel();
    let stream = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        match receiver.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => {
                let done = line.starts_with("Serving until Ctrl-C");
                lines.push(line);
                if done {
                    return (child, lines);
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("riskserve demo did not say it serves; it printed:\n{}", lines.join("\n"));
            }
        }
    }
}

/// Ctrl-C: the demo must stop cleanly.
fn interrupt(mut child: Child) {
    // The shell's own `kill`, so that no procps package is needed.
    let status = Command::new("sh").args(["-c", &format!("kill -INT {}", child.id())]).status().expect("sh runs");
    assert!(status.success());
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the demo exited with {status} on Ctrl-C");
            return;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the demo did not stop within 30 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_demo_serves_the_german_credit_examples_and_its_printed_invocations_work() {
    let scratch = Scratch::new("demo");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let expected: Value = {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/german-credit/xgboost/expected.jsonl");
        serde_json::from_str(std::fs::read_to_string(path).unwrap().lines().next().unwrap()).unwrap()
    };
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent();
    // The second start finds everything deployed in the data dir and serves it again.
    for start in 0..2 {
        let (child, lines) = start_demo(port, &scratch.join("data"));
        let text = lines.join("\n");
        assert!(text.contains(&format!("http://127.0.0.1:{port}")), "{text}");
        let curls: Vec<Vec<String>> =
            lines.iter().filter(|line| line.trim_start().starts_with("curl ")).map(|line| shell_words(line)).collect();
        assert_eq!(curls.len(), 2, "{text}");
        for words in &curls {
            let url = words.iter().find(|word| word.starts_with("http://")).expect("a URL");
            let headers: Vec<&str> =
                words.windows(2).filter(|pair| pair[0] == "-H").map(|pair| pair[1].as_str()).collect();
            let content_type =
                headers.iter().find_map(|header| header.strip_prefix("Content-Type: ")).expect("a Content-Type header");
            let authorization = headers
                .iter()
                .find_map(|header| header.strip_prefix("Authorization: "))
                .expect("an Authorization header");
            assert_eq!(authorization, format!("Bearer {ADMIN_TOKEN}"));
            let body_flag = words.iter().position(|word| word == "--data-binary" || word == "-d").expect("a body");
            let body = &words[body_flag + 1];
            let (base, path) = url.split_at(url.find("/endpoints/").unwrap());
            let reply = send(
                &agent,
                base,
                "POST",
                path,
                Some(content_type),
                body.as_bytes(),
                &[("Authorization", authorization)],
            )
            .unwrap_or_else(|error| panic!("start {start}: {url}: {error}"));
            assert_eq!(reply.status, 200, "start {start}: {}", reply.text());
            let probability = expected["probability"].as_f64().unwrap();
            if content_type == "text/csv" {
                let answer = reply.text();
                let cells: Vec<&str> = answer.trim().split(',').collect();
                assert_eq!(cells.len(), 4, "probability, score, grade, decision: {answer}");
                assert!((cells[0].parse::<f64>().unwrap() - probability).abs() < 1e-6, "{answer} vs {expected}");
                assert_eq!(cells[2], expected["grade"].as_str().unwrap(), "{answer}");
                assert_eq!(cells[3], expected["decision"].as_str().unwrap(), "{answer}");
            } else {
                let answer = reply.json();
                let prediction = &answer["predictions"][0];
                assert!((prediction["probability"].as_f64().unwrap() - probability).abs() < 1e-6, "{answer}");
                assert_eq!(prediction["grade"], expected["grade"]);
                assert!(!prediction["reasons"].as_array().expect("reason codes").is_empty(), "{answer}");
            }
        }
        let endpoints = send(&agent, &format!("http://127.0.0.1:{port}"), "GET", "/api/v1/endpoints", None, b"", &[])
            .unwrap()
            .json();
        let names: BTreeMap<&str, &str> = endpoints["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|endpoint| (endpoint["name"].as_str().unwrap(), endpoint["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            names,
            BTreeMap::from([("german-credit-scorecard", "InService"), ("german-credit-xgboost", "InService")])
        );
        // The printed console URL serves the console, and the printed token signs in to it.
        let console = lines.iter().find_map(|line| line.strip_prefix("The web console: ")).expect("the console line");
        let console_url = console.split_whitespace().next().expect("a URL");
        assert_eq!(console_url, format!("http://127.0.0.1:{port}/console"));
        let (base, path) = console_url.split_at(console_url.find("/console").unwrap());
        let page = send(&agent, base, "GET", path, None, b"", &[]).unwrap();
        assert_eq!(page.status, 200);
        assert!(page.text().contains("/console/assets/app.js"), "{}", page.text());
        let sign_in = json!({"token": ADMIN_TOKEN}).to_string();
        let session =
            send(&agent, base, "POST", "/console/api/session", Some("application/json"), sign_in.as_bytes(), &[])
                .unwrap();
        assert_eq!(session.status, 200, "{}", session.text());
        assert_eq!(session.json()["principal"], "admin");
        interrupt(child);
    }
}

#[test]
fn shell_words_split_like_a_shell() {
    assert_eq!(shell_words("curl -s 'a b' -d 'it'\\''s'"), ["curl", "-s", "a b", "-d", "it's"]);
}
