//! `grant serve` as a process: its first lines, its refusals of unsafe
//! settings, signals (SIGHUP reload, SIGTERM drain), TLS, `--config`, and
//! a SIGKILL during a grant load that loses no answered grant.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const POLICY: &str = "attr env: string\n\
@id(\"read\")\nallow tool \"db.read\" ttl 5m\n\
@id(\"write\")\nallow tool \"db.write\" when env == \"dev\" ttl 1m uses 1\n";

struct Served {
    child: Child,
    base: String,
    lines: Receiver<String>,
    stderr: Receiver<String>,
}

impl Served {
    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (bounded).
    fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "grant serve did not exit in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr_text(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn grant() -> Command {
    Command::new(env!("CARGO_BIN_EXE_grant"))
}

fn lines_of(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (send, receive) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// Starts `grant serve ARGS` and waits (at most 20 s) for its first line.
fn serve(dir: &Path, args: &[&str]) -> Served {
    serve_logging(dir, args, "info")
}

/// The same, with `GRANT_LOG` set to `filter`.
fn serve_logging(dir: &Path, args: &[&str], filter: &str) -> Served {
    let mut child = grant()
        .arg("serve")
        .args(args)
        .env("GRANT_LOG", filter)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(child.stdout.take().unwrap());
    let stderr = lines_of(child.stderr.take().unwrap());
    let first = lines
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| {
            panic!(
                "no first line; stderr: {}",
                stderr.try_iter().collect::<Vec<_>>().join("\n")
            )
        });
    let base = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first}"))
        .to_string();
    Served {
        child,
        base,
        lines,
        stderr,
    }
}

fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("policy.grant");
    std::fs::write(&path, text).unwrap();
    path
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn get_json(url: &str) -> (u16, Value) {
    let response = client().get(url).send().unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

fn post_json(url: &str, body: &Value) -> Result<(u16, Value), reqwest::Error> {
    let response = client().post(url).json(body).send()?;
    Ok((response.status().as_u16(), response.json()?))
}

#[test]
fn prints_the_address_then_the_policy_hash_and_warns_without_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path(), POLICY);
    let served = serve(
        dir.path(),
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert!(
        served.base.starts_with("http://127.0.0.1:"),
        "{}",
        served.base
    );
    assert!(
        !served.base.ends_with(":0"),
        "the real port: {}",
        served.base
    );
    let second = served.lines.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(second.starts_with("policy sha256:"), "{second}");
    let (status, health) = get_json(&format!("{}/health", served.base));
    assert_eq!(status, 200);
    assert_eq!(health["auth"], "none");
    assert_eq!(
        format!("policy {}", health["policy"]["hash"].as_str().unwrap()),
        second
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        served.stderr_text().contains("NOT authenticated"),
        "{}",
        served.stderr_text()
    );
    // The default store: a SQLite file in the working directory, 0600.
    let db = dir.path().join("grant-ledger.db");
    assert!(db.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn refuses_to_expose_itself_without_tokens_or_tls() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path(), POLICY);
    let policy = policy.to_str().unwrap();
    let output = grant()
        .args([
            "serve",
            "--policy",
            policy,
            "--store",
            "memory",
            "--listen",
            "0.0.0.0:0",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without --tokens"), "{stderr}");

    let tokens = dir.path().join("tokens.toml");
    let made = grant()
        .args(["token", "new", "--name", "ops", "--roles", "read"])
        .output()
        .unwrap();
    assert!(made.status.success());
    std::fs::write(&tokens, &made.stdout).unwrap();
    let tokens = tokens.to_str().unwrap();
    let output = grant()
        .args([
            "serve",
            "--policy",
            policy,
            "--store",
            "memory",
            "--listen",
            "0.0.0.0:0",
            "--tokens",
            tokens,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("without TLS"));

    let served = serve(
        dir.path(),
        &[
            "--policy",
            policy,
            "--store",
            "memory",
            "--listen",
            "0.0.0.0:0",
            "--tokens",
            tokens,
            "--insecure-http",
        ],
    );
    assert!(
        served.base.starts_with("http://0.0.0.0:"),
        "{}",
        served.base
    );
}

#[test]
fn a_token_made_by_grant_token_new_authenticates() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path(), POLICY);
    let made = grant()
        .args([
            "token",
            "new",
            "--name",
            "issuer",
            "--roles",
            "decide,issue",
            "--agents",
            "agent-*",
        ])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let text = String::from_utf8(made.stdout).unwrap();
    let secret = text
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(
        !text.lines().skip(1).any(|l| l.contains(&secret)),
        "the file part never holds the secret"
    );
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(&tokens, &text).unwrap();
    let served = serve_logging(
        dir.path(),
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--store",
            "memory",
            "--listen",
            "127.0.0.1:0",
            "--tokens",
            tokens.to_str().unwrap(),
        ],
        "debug",
    );
    let url = format!("{}/v1/decide", served.base);
    let anonymous = client()
        .post(&url)
        .json(&json!({"tool": "db.read"}))
        .send()
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let authenticated = client()
        .post(&url)
        .bearer_auth(&secret)
        .json(&json!({"tool": "db.read"}))
        .send()
        .unwrap();
    assert_eq!(authenticated.status().as_u16(), 200);
    // Debug logs name requests, never their tokens.
    std::thread::sleep(Duration::from_millis(200));
    let logs = served.stderr_text();
    assert!(logs.contains("/v1/decide"), "{logs}");
    assert!(!logs.contains(&secret), "the secret was logged");
    let bad = grant()
        .args(["token", "new", "--name", "x", "--roles", "root"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown role `root`"));
}

#[test]
fn sighup_reloads_and_sigterm_drains_and_flushes_the_decision_log() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path(), POLICY);
    let log = dir.path().join("decisions.ndjson");
    let mut served = serve(
        dir.path(),
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--store",
            "memory",
            "--listen",
            "127.0.0.1:0",
            "--decision-log",
            log.to_str().unwrap(),
        ],
    );
    let health = format!("{}/health", served.base);
    let old_hash = get_json(&health).1["policy"]["hash"]
        .as_str()
        .unwrap()
        .to_string();
    // Write the new policy elsewhere and rename it in, so neither SIGHUP
    // nor the watcher ever reads half a file.
    let staged = dir.path().join("staged.grant");
    std::fs::write(&staged, format!("{POLICY}allow tool \"db.admin\" ttl 1m\n")).unwrap();
    std::fs::rename(&staged, &policy).unwrap();
    served.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hash = get_json(&health).1["policy"]["hash"]
            .as_str()
            .unwrap()
            .to_string();
        if hash != old_hash {
            break;
        }
        assert!(Instant::now() < deadline, "the policy was not reloaded");
        std::thread::sleep(Duration::from_millis(50));
    }
    let decide = format!("{}/v1/decide", served.base);
    for _ in 0..3 {
        let (status, decision) = post_json(&decide, &json!({"tool": "db.admin"})).unwrap();
        assert_eq!((status, decision["effect"].as_str()), (200, Some("allow")));
    }
    served.signal("TERM");
    let status = served.wait(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", served.stderr_text());
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
}

#[test]
fn serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path(), POLICY);
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let served = serve(
        dir.path(),
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--store",
            "memory",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(
        served.base.starts_with("https://127.0.0.1:"),
        "{}",
        served.base
    );
    let trusting = reqwest::blocking::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
        )
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let health = trusting
        .get(format!("{}/health", served.base))
        .send()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    // Plain HTTP to the TLS port gets no answer it could mistake for one.
    let plain = served.base.replacen("https://", "http://", 1);
    assert!(client().get(format!("{plain}/health")).send().is_err());

    let output = grant()
        .args([
            "serve",
            "--policy",
            policy.to_str().unwrap(),
            "--store",
            "memory",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("go together"));
}

#[test]
fn settings_come_from_the_config_file_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path(), POLICY);
    let config = dir.path().join("grant.toml");
    std::fs::write(
        &config,
        format!(
            "policy = {:?}\nstore = \"memory\"\nlisten = \"0.0.0.0:8181\"\n[limits]\nmax_body_bytes = 64\n",
            policy.to_str().unwrap()
        ),
    )
    .unwrap();
    let served = serve(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let (status, body) = post_json(
        &format!("{}/v1/decide", served.base),
        &json!({"tool": "db.read", "attrs": {"env": "a long value to pass the sixty-four byte limit"}}),
    )
    .unwrap();
    assert_eq!(status, 413, "{body}");
    std::fs::write(&config, "polcy = \"x\"\n").unwrap();
    let output = grant()
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("polcy"));
}

#[test]
fn sigkill_during_a_grant_load_loses_no_answered_grant() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write_policy(dir.path(), POLICY);
    let store = format!("sqlite:{}", dir.path().join("ledger.db").display());
    let args = [
        "--policy",
        policy.to_str().unwrap(),
        "--store",
        &store,
        "--listen",
        "127.0.0.1:0",
    ];
    let mut served = serve(dir.path(), &args);
    let base = served.base.clone();
    let stop_at = Instant::now() + Duration::from_secs(20);
    let loaders: Vec<_> = (0..4)
        .map(|n| {
            let base = base.clone();
            std::thread::spawn(move || {
                let mut answered = Vec::new();
                while Instant::now() < stop_at {
                    let Ok((201, task)) = post_json(&format!("{base}/v1/tasks"), &json!({"agent": format!("agent-{n}")})) else {
                        break;
                    };
                    let request = json!({"task_id": task["task_id"], "agent": format!("agent-{n}"), "tool": "db.read"});
                    match post_json(&format!("{base}/v1/grants"), &request) {
                        Ok((201, grant)) => answered.push(grant["grant"]["grant_id"].as_str().unwrap().to_string()),
                        _ => break,
                    }
                }
                answered
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    served.child.kill().unwrap(); // SIGKILL
    served.wait(Duration::from_secs(10));
    let answered: Vec<String> = loaders
        .into_iter()
        .flat_map(|l| l.join().unwrap())
        .collect();
    assert!(
        answered.len() > 20,
        "too few grants answered to mean anything: {}",
        answered.len()
    );

    let restarted = serve(dir.path(), &args);
    for grant_id in &answered {
        let (status, grant) = get_json(&format!("{}/v1/grants/{grant_id}", restarted.base));
        assert_eq!(status, 200, "answered grant {grant_id} lost: {grant}");
        assert_eq!(grant["state"], "active");
    }
    drop(restarted);
    let verified = grant()
        .args(["audit", "verify", "--store", &store])
        .output()
        .unwrap();
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}
