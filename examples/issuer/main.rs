//! An example issuer: opens a task for a support agent, delegates a refund
//! to a payments sub-agent, mints (pretend) credentials for the grants it
//! gets, uses, renews and revokes them, then prints the task's timeline.
//!
//! cargo run -p grant-ledger --example issuer -- [STORE_URL]
//! (default `memory`; with `sqlite:PATH` the store outlives the run, for
//! `grant audit show` and `grant audit verify`).

use std::sync::Arc;

use grant_engine::Engine;
use grant_ledger::{
    BindCredential, Clock, Grant, Ledger, LedgerConfig, ManualClock, OpenTask, Renew, RequestGrant,
    Revoke, RevokeTarget, SystemClock, UseGrant,
};
use serde_json::json;

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "memory".to_string());
    let store = grant_ledger::store::open(&url)?;
    let policy = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/issuer/policy.grant"
    );
    let engine = Engine::from_path(policy).map_err(|e| e.report(false))?;
    // A manual clock started at the real time, so the example can show a
    // grant expiring without sleeping.
    let clock = ManualClock::new(SystemClock.now());
    let ledger = Ledger::with(
        store,
        engine,
        Arc::new(clock.clone()),
        LedgerConfig::default(),
    )?;
    let issuer = "example-issuer";

    let task = ledger.open_task(
        issuer,
        OpenTask {
            agent: "spiffe://prod/support/agent".into(),
            labels: [("ticket".to_string(), "SUP-4411".to_string())].into(),
            ..OpenTask::default()
        },
    )?;
    println!("opened task {} for {}", task.task_id, task.agent);

    let read = grant(
        &ledger,
        issuer,
        &task.task_id,
        &task.agent,
        "crm.read",
        json!({"sensitivity": "internal"}),
    )?;
    mint(&ledger, issuer, &read)?;
    use_grant(&ledger, &read)?;

    // Delegation: the support agent hands the refund to a payments agent.
    let refund_parent = grant(
        &ledger,
        issuer,
        &task.task_id,
        &task.agent,
        "payments.refund",
        json!({"amount_cents": 1999}),
    )?;
    let sub = ledger.open_task(
        issuer,
        OpenTask {
            agent: "spiffe://prod/payments/refunder".into(),
            parent_task_id: Some(task.task_id.clone()),
            ..OpenTask::default()
        },
    )?;
    println!("opened sub-task {} for {}", sub.task_id, sub.agent);
    let refund = grant(
        &ledger,
        issuer,
        &sub.task_id,
        &sub.agent,
        "payments.refund",
        json!({"amount_cents": 1999}),
    )?;
    println!(
        "  the sub-agent's grant is capped by its parent's: expires {} (parent {}), uses {:?}",
        refund.expires_at, refund_parent.expires_at, refund.uses_left
    );
    mint(&ledger, issuer, &refund)?;
    use_grant(&ledger, &refund)?;
    // Over the limit: denied, and recorded.
    let big = ledger.request_grant(
        issuer,
        RequestGrant {
            task_id: sub.task_id.clone(),
            agent: sub.agent.clone(),
            tool: "payments.refund".into(),
            attrs: json!({"amount_cents": 900_000})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            ttl: None,
        },
    )?;
    println!(
        "a 9,000.00 refund: {}",
        big.decision.decision.reasons.join("; ")
    );

    // Four minutes later the read grant is renewed, decided again.
    clock.advance_secs(240);
    let renewed = ledger.renew(
        issuer,
        Renew {
            grant_id: read.grant_id.clone(),
            agent: task.agent.clone(),
            attrs: json!({"sensitivity": "internal"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            ttl: None,
        },
    )?;
    if let Some(grant) = renewed.grant {
        println!("renewed {} until {}", grant.grant_id, grant.expires_at);
    }

    // The security team revokes the refund chain at its root; the sub-agent's
    // grant goes with it, credentials listed for revocation at the source.
    let revoked = ledger.revoke(
        "security-oncall",
        Revoke {
            target: RevokeTarget::Grant(refund_parent.grant_id.clone()),
            reason: "refund fraud suspected".into(),
            block: false,
        },
    )?;
    println!("revoked {:?}", revoked.revoked);

    // The task completes; whatever is left is revoked.
    let ended = ledger.end_task(issuer, &task.task_id)?;
    println!("ended {:?}, revoking {:?}", ended.ended, ended.revoked);

    println!(
        "\n{}",
        grant_ledger::audit::render_timeline(&ledger.timeline(&task.task_id)?)
    );
    println!("\ntask id: {}", task.task_id);
    Ok(())
}

fn grant(
    ledger: &Ledger,
    issuer: &str,
    task_id: &str,
    agent: &str,
    tool: &str,
    attrs: serde_json::Value,
) -> Result<Grant, Box<dyn std::error::Error>> {
    let answer = ledger.request_grant(
        issuer,
        RequestGrant {
            task_id: task_id.into(),
            agent: agent.into(),
            tool: tool.into(),
            attrs: attrs.as_object().cloned().unwrap_or_default(),
            ttl: None,
        },
    )?;
    let grant = answer
        .grant
        .ok_or_else(|| format!("{tool} denied: {:?}", answer.decision.decision.reasons))?;
    let rules: Vec<&str> = answer
        .decision
        .decision
        .rules
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    println!(
        "  granted {tool} as {} until {} by {rules:?}",
        grant.grant_id, grant.expires_at
    );
    Ok(grant)
}

/// Pretends to mint a credential (an STS session, say) and records its
/// reference: never the secret.
fn mint(ledger: &Ledger, issuer: &str, grant: &Grant) -> Result<(), Box<dyn std::error::Error>> {
    let credential_ref = format!("sts:session/{}", &grant.grant_id[6..14]);
    ledger.bind_credential(
        issuer,
        BindCredential {
            grant_id: grant.grant_id.clone(),
            issuer: "aws-sts".into(),
            credential_ref,
            expires_at: Some(grant.expires_at),
        },
    )?;
    Ok(())
}

fn use_grant(ledger: &Ledger, grant: &Grant) -> Result<(), Box<dyn std::error::Error>> {
    let answer = ledger.use_grant(
        "tool-gateway",
        UseGrant {
            grant_id: grant.grant_id.clone(),
            agent: grant.agent.clone(),
            tool: grant.tool.clone(),
            attrs: None,
        },
    )?;
    println!(
        "  used {}: ok={} uses_left={:?}",
        grant.tool, answer.ok, answer.uses_left
    );
    Ok(())
}
