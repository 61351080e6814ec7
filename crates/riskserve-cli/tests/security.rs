//! The binary's access control end to end: the first start prints generated administrator credentials once,
//! `riskserve iam` manages users and credentials, a role's limits hold for CLI calls, and `riskserve audit`
//! queries, exports the public key and verifies the trail through the server and offline.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Server {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_riskserve"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir.to_str().expect("a path")])
            .env_remove("RISKSERVE_ADMIN_TOKEN")
            .env_remove("RISKSERVE_ADMIN_ACCESS_KEY_ID")
            .env_remove("RISKSERVE_ADMIN_SECRET_ACCESS_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("riskserve serve starts");
        let log = Arc::new(Mutex::new(String::new()));
        let (ready, address) = mpsc::channel();
        let stream = child.stderr.take().expect("stderr");
        let writer = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line.split("riskserve listening on http://").nth(1) {
                    let _ = ready.send(address.trim().to_string());
                }
                let mut log = writer.lock().expect("the log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let address = address.recv_timeout(Duration::from_secs(60)).expect("the server prints its address");
        Server { child, url: format!("http://{address}"), log }
    }

    fn log(&self) -> String {
        self.log.lock().expect("the log").clone()
    }

    fn cli(&self, token: Option<&str>, arguments: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_riskserve"));
        command
            .args(arguments)
            .env("RISKSERVE_URL", &self.url)
            .env_remove("RISKSERVE_TOKEN")
            .env("RISKSERVE_TOKEN_FILE", "/nonexistent/riskserve-token");
        if let Some(token) = token {
            command.env("RISKSERVE_TOKEN", token);
        }
        command.output().expect("the binary runs")
    }

    fn ok(&self, token: &str, arguments: &[&str]) -> String {
        let output = self.cli(Some(token), arguments);
        assert!(
            output.status.success(),
            "riskserve {}: {}",
            arguments.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn json(&self, token: &str, arguments: &[&str]) -> Value {
        let mut arguments = arguments.to_vec();
        arguments.extend(["--output", "json"]);
        serde_json::from_str(&self.ok(token, &arguments)).expect("JSON")
    }

    /// SIGTERM through the shell, then waits: a clean shutdown that seals the trail.
    fn stop(mut self) {
        let status = Command::new("sh").args(["-c", &format!("kill -TERM {}", self.child.id())]).status().expect("sh");
        assert!(status.success());
        let start = Instant::now();
        while self.child.try_wait().expect("waits").is_none() {
            assert!(start.elapsed() < Duration::from_secs(30), "the server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn printed(log: &str, label: &str) -> String {
    log.lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .map(|value| value.trim().to_string())
        .unwrap_or_else(|| panic!("no {label:?} in the log:\n{log}"))
}

#[test]
fn iam_and_audit_commands_work_end_to_end() {
    let scratch = Scratch(std::env::temp_dir().join(format!("riskserve-cli-security-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&scratch.0);
    let data = scratch.0.join("data");
    let server = Server::start(&data);
    let log = server.log();
    let admin = printed(&log, "bearer token:");
    let key_id = printed(&log, "access key id:");
    assert!(admin.starts_with("rsk_") && key_id.starts_with("AKIA"), "{log}");
    assert!(
        !std::fs::read(data.join("riskserve.db"))
            .expect("the database")
            .windows(admin.len())
            .any(|w| w == admin.as_bytes())
    );

    // Without credentials only health answers.
    let refused = server.cli(None, &["model", "list"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("credentials"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // The profile file stands in for RISKSERVE_TOKEN.
    let token_file = scratch.0.join("token");
    std::fs::write(&token_file, format!("{admin}\n")).expect("written");
    let from_file = Command::new(env!("CARGO_BIN_EXE_riskserve"))
        .args(["model", "list"])
        .env("RISKSERVE_URL", &server.url)
        .env_remove("RISKSERVE_TOKEN")
        .env("RISKSERVE_TOKEN_FILE", &token_file)
        .output()
        .expect("runs");
    assert!(from_file.status.success(), "{}", String::from_utf8_lossy(&from_file.stderr));

    let user = server.json(&admin, &["iam", "user", "create", "--name", "app", "--role", "invoker"]);
    assert_eq!(user["roles"], serde_json::json!(["invoker"]));
    let token_line = server.ok(&admin, &["iam", "token", "create", "--user", "app"]);
    let token = token_line.trim().strip_prefix("RISKSERVE_TOKEN=").expect("the token line").to_string();
    let key = server.json(&admin, &["iam", "access-key", "create", "--user", "app"]);
    assert_eq!(key["secret_access_key"].as_str().map(str::len), Some(40), "{key}");
    let described = server.ok(&admin, &["iam", "user", "describe", "app"]);
    assert!(described.contains(key["access_key_id"].as_str().expect("an id")) && !described.contains(&token));

    // The invoker may not list models: 403 with the action named.
    let denied = server.cli(Some(&token), &["model", "list"]);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("sagemaker:ListModels"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );

    let events = server.json(&admin, &["audit", "query", "--outcome", "denied", "--principal", "app"]);
    let events = events.as_array().expect("events");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["action"], "sagemaker:ListModels");
    let unauthenticated = server.json(&admin, &["audit", "query", "--action", "auth:Authenticate"]);
    assert!(!unauthenticated.as_array().expect("events").is_empty());
    let public_key = server.ok(&admin, &["audit", "public-key"]).trim().to_string();
    assert_eq!(public_key.len(), 64, "{public_key}");
    assert!(server.ok(&admin, &["audit", "verify"]).starts_with("ok: "));
    // The auditor reads the trail but may not create users.
    server.ok(&admin, &["iam", "user", "create", "--name", "audit", "--role", "auditor"]);
    let auditor = server.ok(&admin, &["iam", "token", "create", "--user", "audit"]);
    let auditor = auditor.trim().strip_prefix("RISKSERVE_TOKEN=").expect("the token line").to_string();
    assert!(server.ok(&auditor, &["audit", "verify"]).starts_with("ok: "));
    assert!(!server.cli(Some(&auditor), &["iam", "user", "create", "--name", "x"]).status.success());
    server.stop();

    // Offline, with the exported key; a restart does not print credentials again.
    let offline = Command::new(env!("CARGO_BIN_EXE_riskserve"))
        .args(["audit", "verify", "--data-dir", data.to_str().expect("a path"), "--public-key", &public_key])
        .output()
        .expect("runs");
    assert!(offline.status.success(), "{}", String::from_utf8_lossy(&offline.stderr));
    let wrong_key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let forged = Command::new(env!("CARGO_BIN_EXE_riskserve"))
        .args(["audit", "verify", "--data-dir", data.to_str().expect("a path"), "--public-key", wrong_key])
        .output()
        .expect("runs");
    assert!(!forged.status.success());
    assert!(String::from_utf8_lossy(&forged.stdout).contains("BROKEN"), "{}", String::from_utf8_lossy(&forged.stdout));
    let again = Server::start(&data);
    assert!(!again.log().contains("created the administrator"), "{}", again.log());
    assert!(again.ok(&admin, &["audit", "verify"]).starts_with("ok: "));
    again.stop();
}
