//! Sessions whose gateway was killed (SIGKILL, a crash, a power cut) never
//! reach their end, so their tasks stay open. Each task carries the host
//! and process id of the gateway that opened it; a gateway starting for the
//! same agent and server name ends the tasks whose process is gone on this
//! host, revoking their grants, with the reason recorded.

use std::collections::BTreeMap;

use grant_ledger::{Ledger, LedgerError, Revoke, RevokeTarget};

/// Task labels naming the gateway process.
pub const HOST_LABEL: &str = "mcp.host";
pub const PID_LABEL: &str = "mcp.pid";

/// This process's labels: its host and pid.
pub fn process_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (HOST_LABEL.to_string(), host()),
        (PID_LABEL.to_string(), std::process::id().to_string()),
    ])
}

fn host() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Whether process `pid` runs on this host. In doubt (a pid that cannot
/// be one), it is taken as running: a live session must never be ended.
fn running(pid: &str) -> bool {
    let Some(pid) = pid
        .parse::<i32>()
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return true;
    };
    // Permission denied means it exists (another user's process).
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// Ends the open tasks of `agent` that a gateway for server `name` on this
/// host opened and whose process is gone. Returns the ended task ids.
pub fn reap(ledger: &Ledger, agent: &str, name: &str) -> Result<Vec<String>, LedgerError> {
    let host = host();
    let mut orphans = Vec::new();
    let store = ledger.store();
    store.read(&mut |tx| {
        orphans.clear();
        for task in tx.open_tasks_of_agent(agent)? {
            let labels = &task.labels;
            let ours = labels.get("mcp.name").map(String::as_str) == Some(name)
                && labels.get(HOST_LABEL) == Some(&host);
            if let Some(pid) = labels.get(PID_LABEL).filter(|_| ours)
                && pid != &std::process::id().to_string()
                && !running(pid)
            {
                orphans.push((task.task_id.clone(), pid.clone()));
            }
        }
        Ok(())
    })?;
    let mut ended = Vec::new();
    for (task_id, pid) in orphans {
        let revoke = Revoke {
            target: RevokeTarget::Task(task_id.clone()),
            reason: format!("session orphaned: gateway process {pid} on {host} is gone"),
            block: false,
        };
        ledger.revoke(&format!("mcp:{name}"), revoke)?;
        tracing::info!("ended orphaned session task {task_id} (gateway process {pid} is gone)");
        ended.push(task_id);
    }
    Ok(ended)
}
