//! Reloading the policy: a bad new policy keeps the old one serving
//! (`degraded`), the watcher reloads without being asked, a policy past
//! its staleness limit denies everything (`failing`); and signed bundles:
//! every rejection, the last-known-good bundle across restarts, and its
//! persisted verification time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use grant_ledger::checkpoint::{self, Signer};
use grant_server::{PolicySource, Server, Settings, bundle};
use serde_json::{Value, json};

/// The test policy, and a changed one (one more rule).
fn good() -> String {
    std::fs::read_to_string(policy("service.grant")).unwrap()
}

fn changed() -> String {
    format!(
        "{}\n@id(\"extra\")\nallow tool \"extra.tool\" ttl 1m\n",
        good()
    )
}

const BROKEN: &str = "allow tool \"db.read\" when nope ttl 1m\n";

/// Replaces `path` whole (a rename, as editors and deploys do).
fn replace(path: &Path, text: &[u8]) {
    let temp = path.with_extension("tmp-write");
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

fn hash_of(text: &str) -> String {
    grant_engine::Engine::from_text("policy.grant", text)
        .unwrap()
        .policy_hash()
        .to_string()
}

fn decide_read(server: &TestServer) -> Value {
    let (status, body) = post(
        server,
        "/v1/decide",
        &json!({"tool": "db.read", "attrs": {"sensitivity": "public"}}),
    );
    assert_eq!(status, 200, "{body}");
    body
}

/// Waits for the server's first answer: it serves only once its
/// background work (the watcher among it) has started, so a change made
/// after this is seen.
fn answered(server: &TestServer) {
    let (status, health) = get(server, "/health");
    assert!(status == 200 || status == 503, "{health}");
}

/// Polls `/health` until `done` holds, for at most 5 s.
fn wait_for(server: &TestServer, what: &str, done: impl Fn(u16, &Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, health) = get(server, "/health");
        if done(status, &health) {
            return health;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "waited 5 s for {what}; health: {health}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A server of a policy file in a directory of its own (so the test can
/// change it), with `change` applied to its settings.
fn file_server(change: impl FnOnce(&mut Settings)) -> (TestServer, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.grant");
    std::fs::write(&file, good()).unwrap();
    let source = file.clone();
    let server = TestServer::start_with("service.grant", move |settings| {
        settings.policy = PolicySource::Files(source);
        change(settings);
    });
    answered(&server);
    (server, dir, file)
}

#[test]
fn a_broken_policy_keeps_the_old_one_serving_until_fixed() {
    let (server, _dir, file) = file_server(|_| {});
    let old = hash_of(&good());
    assert_eq!(decide_read(&server)["policy_hash"], old.as_str());

    std::fs::write(&file, BROKEN).unwrap();
    let (status, body) = post(&server, "/v1/policy/reload", &json!({}));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["policy_hash"], old.as_str());
    assert!(body["error"].as_str().unwrap().contains("nope"), "{body}");

    let (status, health) = get(&server, "/health");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["policy"]["hash"], old.as_str());
    assert!(
        health["policy"]["last_error"]
            .as_str()
            .unwrap()
            .contains("nope"),
        "{health}"
    );
    assert!(
        health["reasons"][0]
            .as_str()
            .unwrap()
            .contains("last-known-good"),
        "{health}"
    );
    let decision = decide_read(&server);
    assert_eq!(decision["effect"], "allow", "{decision}");
    assert_eq!(decision["policy_hash"], old.as_str());

    std::fs::write(&file, changed()).unwrap();
    let (status, body) = post(&server, "/v1/policy/reload", &json!({}));
    assert_eq!(status, 200, "{body}");
    let new = hash_of(&changed());
    // `changed` may already be false: the watcher can win the race.
    assert_eq!(body["policy_hash"], new.as_str());
    let (status, health) = get(&server, "/health");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(decide_read(&server)["policy_hash"], new.as_str());
}

#[test]
fn the_watcher_reloads_without_being_asked() {
    let (server, _dir, file) = file_server(|_| {});
    replace(&file, changed().as_bytes());
    let new = hash_of(&changed());
    wait_for(&server, "the changed policy", |_, health| {
        health["policy"]["hash"] == new.as_str() && health["status"] == "ok"
    });
    // A change to something else in the directory is not a reload.
    let reloads = get(&server, "/health").1["policy"]["reloads_ok"].clone();
    std::fs::write(file.with_file_name("notes.txt"), "x").unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(get(&server, "/health").1["policy"]["reloads_ok"], reloads);

    replace(&file, BROKEN.as_bytes());
    let health = wait_for(&server, "the broken policy", |_, health| {
        health["status"] == "degraded"
    });
    assert_eq!(health["policy"]["hash"], new.as_str());
}

#[test]
fn the_watcher_reloads_a_policy_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.grant"), good()).unwrap();
    let source = dir.path().to_path_buf();
    let server = TestServer::start_with("service.grant", move |settings| {
        settings.policy = PolicySource::Files(source);
    });
    answered(&server);
    std::fs::create_dir(dir.path().join("more")).unwrap();
    std::fs::write(
        dir.path().join("more/extra.grant"),
        "allow tool \"extra.tool\" ttl 1m\n",
    )
    .unwrap();
    let new = grant_engine::Engine::from_path(dir.path())
        .unwrap()
        .policy_hash()
        .to_string();
    wait_for(&server, "the new file", |_, health| {
        health["policy"]["hash"] == new.as_str()
    });
}

#[test]
fn past_max_staleness_every_decision_is_denied() {
    let (server, _dir, file) = file_server(|settings| {
        settings.max_staleness = Some(Duration::from_secs(1));
    });
    assert_eq!(decide_read(&server)["effect"], "allow");
    // A good source is checked again and stays fresh.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(decide_read(&server)["effect"], "allow");
    assert_eq!(get(&server, "/ready").0, 200);

    std::fs::write(&file, BROKEN).unwrap();
    let (status, _) = post(&server, "/v1/policy/reload", &json!({}));
    assert_eq!(status, 422);
    std::thread::sleep(Duration::from_millis(1500));

    let decision = decide_read(&server);
    assert_eq!(decision["effect"], "deny", "{decision}");
    let error = decision["errors"][0].as_str().unwrap();
    assert!(error.contains("stale"), "{decision}");
    assert!(error.contains("nope"), "{decision}");
    let (status, health) = get(&server, "/health");
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "failing", "{health}");
    let (status, ready) = get(&server, "/ready");
    assert_eq!(status, 503, "{ready}");
    assert!(
        ready["error"].as_str().unwrap().contains("stale"),
        "{ready}"
    );

    // Fixed: the periodic check (or the watcher) brings it back.
    std::fs::write(&file, good()).unwrap();
    wait_for(&server, "a fresh policy", |status, health| {
        status == 200 && health["status"] == "ok"
    });
    assert_eq!(decide_read(&server)["effect"], "allow");
}

// Bundles.

/// A key pair: the signer, and the public key file.
fn keys(dir: &Path, name: &str) -> (Signer, PathBuf) {
    let (private, public) = checkpoint::generate_key_pair().unwrap();
    let path = dir.join(format!("{name}.pub"));
    std::fs::write(&path, public).unwrap();
    (Signer::from_pem(&private).unwrap(), path)
}

/// A signed bundle of the policy `text`.
fn bundle_of(text: &str, revision: u64, signer: &Signer) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.grant"), text).unwrap();
    bundle::build(dir.path(), revision, signer).unwrap()
}

/// Where a bundle server keeps things across restarts.
struct Site {
    dir: tempfile::TempDir,
    signer: Signer,
    key: PathBuf,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("state")).unwrap();
        let (signer, key) = keys(dir.path(), "bundle");
        Site { dir, signer, key }
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("policy.bundle")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn publish(&self, text: &str, revision: u64) {
        replace(&self.bundle(), &bundle_of(text, revision, &self.signer));
    }

    fn settings(&self, key: Option<&Path>) -> Settings {
        Settings::new(
            PolicySource::Bundle {
                path: self.bundle(),
                key: key.map(Path::to_path_buf),
            },
            "memory",
            &self.state(),
        )
    }

    fn start(&self, change: impl FnOnce(&mut Settings)) -> TestServer {
        let mut settings = self.settings(Some(&self.key));
        change(&mut settings);
        let server = Server::new(settings).expect("server starts");
        let server = TestServer::run(server, tempfile::tempdir().unwrap());
        answered(&server);
        server
    }

    fn refused(&self, key: Option<&Path>) -> String {
        match Server::new(self.settings(key)) {
            Ok(_) => panic!("the server started"),
            Err(error) => error.to_string(),
        }
    }
}

fn reload_error(server: &TestServer) -> String {
    let (status, body) = post(server, "/v1/policy/reload", &json!({}));
    assert_eq!(status, 422, "{body}");
    body["error"].as_str().unwrap().to_string()
}

#[test]
fn a_signed_bundle_is_served_and_kept_as_last_known_good() {
    let site = Site::new();
    site.publish(&good(), 1);
    let server = site.start(|_| {});
    let (status, health) = get(&server, "/health");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["policy"]["hash"], hash_of(&good()).as_str());
    assert_eq!(decide_read(&server)["effect"], "allow");

    let lkg = site.state().join("grant-bundle.lkg.json");
    assert_eq!(
        std::fs::read(&lkg).unwrap(),
        std::fs::read(site.bundle()).unwrap()
    );
    let state: Value = serde_json::from_slice(
        &std::fs::read(site.state().join("grant-bundle.state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["revision"], 1);
    assert_eq!(state["policy_hash"], hash_of(&good()).as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for name in ["grant-bundle.lkg.json", "grant-bundle.state.json"] {
            let mode = std::fs::metadata(site.state().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    // A new revision, through the route.
    site.publish(&changed(), 2);
    let (status, body) = post(&server, "/v1/policy/reload", &json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["policy_hash"], hash_of(&changed()).as_str());
    assert_eq!(
        std::fs::read(&lkg).unwrap(),
        std::fs::read(site.bundle()).unwrap()
    );
}

#[test]
fn bad_bundles_are_refused_and_the_old_one_keeps_serving() {
    let site = Site::new();
    site.publish(&good(), 5);
    let server = site.start(|_| {});
    let old = hash_of(&good());
    let lkg = std::fs::read(site.state().join("grant-bundle.lkg.json")).unwrap();

    // Signed by a key the service does not hold.
    let (other, _) = keys(site.dir.path(), "other");
    replace(&site.bundle(), &bundle_of(&changed(), 6, &other));
    assert!(reload_error(&server).contains("not a configured key"));

    // A signature that does not verify.
    let mut doc: Value = serde_json::from_slice(&bundle_of(&changed(), 6, &site.signer)).unwrap();
    doc["manifest"]["revision"] = json!(7);
    replace(&site.bundle(), &serde_json::to_vec(&doc).unwrap());
    assert!(reload_error(&server).contains("signature does not verify"));

    // Unsigned.
    let mut doc: Value = serde_json::from_slice(&bundle_of(&changed(), 6, &site.signer)).unwrap();
    doc.as_object_mut().unwrap().remove("signature");
    replace(&site.bundle(), &serde_json::to_vec(&doc).unwrap());
    assert!(reload_error(&server).contains("unsigned"));

    // A file the manifest does not list.
    let mut doc: Value = serde_json::from_slice(&bundle_of(&good(), 6, &site.signer)).unwrap();
    doc["files"]["sneaky.grant"] = json!("allow tool \"*\" ttl 12h\n");
    replace(&site.bundle(), &serde_json::to_vec(&doc).unwrap());
    assert!(reload_error(&server).contains("`sneaky.grant`, which the manifest does not list"));

    // A lower revision: no rollback.
    site.publish(&changed(), 4);
    assert!(reload_error(&server).contains("rollback refused"));

    // The same revision with another policy.
    site.publish(&changed(), 5);
    assert!(reload_error(&server).contains("needs a higher revision"));

    let (_, health) = get(&server, "/health");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["policy"]["hash"], old.as_str());
    assert_eq!(decide_read(&server)["policy_hash"], old.as_str());
    assert_eq!(
        std::fs::read(site.state().join("grant-bundle.lkg.json")).unwrap(),
        lkg
    );

    // A higher revision is served.
    site.publish(&changed(), 6);
    let (status, body) = post(&server, "/v1/policy/reload", &json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(&server, "/health").1["status"], "ok");
}

#[test]
fn a_bundle_is_refused_at_start_without_a_key_or_without_a_signature() {
    let site = Site::new();
    site.publish(&good(), 1);
    let error = site.refused(None);
    assert!(
        error.contains("no key is configured to verify it"),
        "{error}"
    );
    assert!(error.contains("no last-known-good bundle"), "{error}");

    let mut doc: Value = serde_json::from_slice(&std::fs::read(site.bundle()).unwrap()).unwrap();
    doc.as_object_mut().unwrap().remove("signature");
    replace(&site.bundle(), &serde_json::to_vec(&doc).unwrap());
    let error = site.refused(Some(&site.key));
    assert!(error.contains("unsigned"), "{error}");
    let error = site.refused(None);
    assert!(
        error.contains("unsigned, and no key is configured"),
        "{error}"
    );
}

#[test]
fn a_restart_without_the_source_serves_the_last_known_good_bundle() {
    let site = Site::new();
    site.publish(&good(), 2);
    drop(site.start(|_| {}));

    std::fs::remove_file(site.bundle()).unwrap();
    let server = site.start(|_| {});
    let (status, health) = get(&server, "/health");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["reasons"][0]
            .as_str()
            .unwrap()
            .contains("cannot read"),
        "{health}"
    );
    let decision = decide_read(&server);
    assert_eq!(decision["effect"], "allow", "{decision}");
    assert_eq!(decision["policy_hash"], hash_of(&good()).as_str());
    drop(server);

    // An older bundle at the source after a restart: still no rollback.
    site.publish(&changed(), 1);
    let server = site.start(|_| {});
    let (_, health) = get(&server, "/health");
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["policy"]["last_error"]
            .as_str()
            .unwrap()
            .contains("rollback refused"),
        "{health}"
    );
    assert_eq!(health["policy"]["hash"], hash_of(&good()).as_str());
    drop(server);

    // Nothing at all to serve: the start fails, saying why.
    std::fs::remove_file(site.bundle()).unwrap();
    std::fs::remove_file(site.state().join("grant-bundle.lkg.json")).unwrap();
    let error = site.refused(Some(&site.key));
    assert!(error.contains("cannot read"), "{error}");
    assert!(error.contains("no last-known-good bundle"), "{error}");
}

#[test]
fn a_restart_does_not_reset_the_staleness_clock() {
    let site = Site::new();
    site.publish(&good(), 1);
    let one_second = |settings: &mut Settings| {
        settings.max_staleness = Some(Duration::from_secs(1));
    };
    drop(site.start(one_second));
    std::thread::sleep(Duration::from_millis(1200));
    std::fs::remove_file(site.bundle()).unwrap();

    let server = site.start(one_second);
    let (status, health) = get(&server, "/health");
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "failing", "{health}");
    assert_eq!(get(&server, "/ready").0, 503);
    let decision = decide_read(&server);
    assert_eq!(decision["effect"], "deny", "{decision}");
    assert!(
        decision["errors"][0].as_str().unwrap().contains("stale"),
        "{decision}"
    );

    // The source back: verified again, fresh again.
    site.publish(&good(), 1);
    wait_for(&server, "a fresh policy", |status, health| {
        status == 200 && health["status"] == "ok"
    });
}

#[test]
fn the_watcher_reloads_a_new_bundle() {
    let site = Site::new();
    site.publish(&good(), 1);
    let server = site.start(|_| {});
    site.publish(&changed(), 2);
    let new = hash_of(&changed());
    wait_for(&server, "the new bundle", |_, health| {
        health["policy"]["hash"] == new.as_str()
    });
}
