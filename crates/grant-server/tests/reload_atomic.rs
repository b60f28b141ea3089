//! Hot reload is atomic: while the policy flips between two versions under
//! a stream of decisions, every decision is wholly one version's (its
//! `policy_hash` and its ttl agree), and every decision of a batch is the
//! same version's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use grant_server::PolicySource;
use serde_json::{Value, json};

const ONE_MINUTE: &str = "allow tool \"db.read\" ttl 1m\n";
const TWO_MINUTES: &str = "allow tool \"db.read\" ttl 2m\n";

#[test]
fn every_decision_is_wholly_one_policy_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.grant");
    std::fs::write(&path, ONE_MINUTE).unwrap();
    let watched = path.clone();
    let server = Arc::new(TestServer::start_with("service.grant", move |s| {
        s.policy = PolicySource::Files(watched);
    }));
    // Which hash is which version: learnt between reloads, when only this
    // thread changes the policy.
    let mut ttl_of_hash: BTreeMap<String, u64> = BTreeMap::new();
    let mut learn = |server: &TestServer, ttl: u64| {
        let (_, decision) = post(server, "/v1/decide", &json!({"tool": "db.read"}));
        assert_eq!(decision["ttl_seconds"], ttl, "{decision}");
        ttl_of_hash.insert(decision["policy_hash"].as_str().unwrap().to_string(), ttl);
    };
    learn(&server, 60);

    let done = Arc::new(AtomicBool::new(false));
    let deciders: Vec<_> = (0..3)
        .map(|_| {
            let server = Arc::clone(&server);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !done.load(Ordering::Relaxed) && seen.len() < 2000 {
                    let (status, batch) = post(
                        &server,
                        "/v1/decide/batch",
                        &json!({"requests": [{"tool": "db.read"}, {"tool": "db.read"}, {"tool": "db.read"}]}),
                    );
                    assert_eq!(status, 200, "{batch}");
                    seen.push(batch);
                }
                seen
            })
        })
        .collect();
    for round in 0..20 {
        let text = if round % 2 == 0 {
            TWO_MINUTES
        } else {
            ONE_MINUTE
        };
        let staged = dir.path().join("staged");
        std::fs::write(&staged, text).unwrap();
        std::fs::rename(&staged, &path).unwrap();
        let (status, reloaded) = post(&server, "/v1/policy/reload", &json!({}));
        assert_eq!(status, 200, "{reloaded}");
        learn(&server, if round % 2 == 0 { 120 } else { 60 });
    }
    assert_eq!(ttl_of_hash.len(), 2);
    done.store(true, Ordering::Relaxed);
    let mut versions_seen = BTreeMap::new();
    for decider in deciders {
        for batch in decider.join().unwrap() {
            let decisions: &Vec<Value> = batch["decisions"].as_array().unwrap();
            let hash = decisions[0]["policy_hash"].as_str().unwrap();
            for decision in decisions {
                assert_eq!(
                    decision["policy_hash"], hash,
                    "one batch, one policy: {batch}"
                );
                assert_eq!(
                    decision["ttl_seconds"], ttl_of_hash[hash],
                    "the ttl is the hash's: {decision}"
                );
            }
            *versions_seen.entry(hash.to_string()).or_insert(0) += 1;
        }
    }
    assert_eq!(
        versions_seen.len(),
        2,
        "both versions served: {versions_seen:?}"
    );
}
