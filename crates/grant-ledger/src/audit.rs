//! Reading the audit trail, for people and tools: the timeline of a task
//! (its events and its sub-tasks', transitively), pages of the chain, and
//! a rendering of a timeline that reads as one lifecycle per task.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use grant_syntax::chars::{excerpt, printable};

use crate::error::LedgerError;
use crate::event::{Event, EventType};
use crate::store::{Store, StoreError, StoredEvent};

/// The most events one call of [`events_after`] returns.
pub const MAX_EVENTS_PAGE: usize = 1000;

/// Every event of `task_id` and of its sub-tasks, transitively, ascending
/// by `seq`; [`LedgerError::NotFound`] when there is no such task.
pub fn timeline(store: &dyn Store, task_id: &str) -> Result<Vec<Event>, LedgerError> {
    let mut found = true;
    let mut stored = Vec::new();
    store.read(&mut |tx| {
        if tx.task(task_id)?.is_none() {
            found = false;
            return Ok(());
        }
        // Breadth first; the set guards against a malformed store whose
        // parent links loop.
        let mut tasks = BTreeSet::from([task_id.to_string()]);
        let mut queue = vec![task_id.to_string()];
        while let Some(task) = queue.pop() {
            for sub in tx.subtasks(&task)? {
                if tasks.insert(sub.task_id.clone()) {
                    queue.push(sub.task_id);
                }
            }
        }
        let tasks: Vec<String> = tasks.into_iter().collect();
        stored = tx.events_of_tasks(&tasks)?;
        Ok(())
    })?;
    if !found {
        return Err(LedgerError::not_found("task", task_id));
    }
    stored.iter().map(parse).collect()
}

/// Up to `limit` (at most [`MAX_EVENTS_PAGE`]) stored events with
/// `seq > after`, ascending: a page of the chain, as export and the
/// service's event tail read it.
pub fn events_after(
    store: &dyn Store,
    after: u64,
    limit: usize,
) -> Result<Vec<StoredEvent>, LedgerError> {
    let mut page = Vec::new();
    store.read(&mut |tx| {
        page = tx.events_after(after, limit.min(MAX_EVENTS_PAGE))?;
        Ok(())
    })?;
    Ok(page)
}

/// A stored event as an [`Event`].
pub fn parse(stored: &StoredEvent) -> Result<Event, LedgerError> {
    serde_json::from_str(&stored.json).map_err(|e| {
        LedgerError::Store(StoreError::corrupt(format!(
            "event {} is malformed: {e}",
            stored.seq
        )))
    })
}

/// A timeline for people: a block per task, its header naming the task and
/// its agent, then one line per event (seq, time, type, and what applies:
/// grant, tool, who, the decision and its deciding rules, until when, uses
/// left, reason). A sub-task's block is indented under its parent, placed
/// where the sub-task was opened, so each block reads as one lifecycle
/// (opened, issued, used, renewed, revoked, ended) and `seq` keeps the
/// order across blocks. Text the events carry is escaped for terminals.
pub fn render_timeline(events: &[Event]) -> String {
    let tree = Tree::new(events);
    let mut out = String::new();
    let seq_width = events.last().map_or(1, |e| e.seq.to_string().len());
    for root in &tree.roots {
        tree.render(root, 0, seq_width, &mut out);
    }
    out
}

/// Tasks as the events show them: parents from `task.opened`, and each
/// task's events.
struct Tree<'e> {
    /// Tasks without a parent among these events, in order of first event.
    roots: Vec<String>,
    children: BTreeMap<String, Vec<String>>,
    events: BTreeMap<String, Vec<&'e Event>>,
    opened: BTreeMap<String, &'e Event>,
}

impl<'e> Tree<'e> {
    fn new(events: &'e [Event]) -> Tree<'e> {
        let mut order: Vec<String> = Vec::new();
        let mut by_task: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
        let mut opened = BTreeMap::new();
        for event in events {
            // An event without a task has no place in a task's timeline,
            // but is not dropped: it goes to a block of its own.
            let task = event.task_id.clone().unwrap_or_default();
            let list = by_task.entry(task.clone()).or_default();
            if list.is_empty() {
                order.push(task.clone());
            }
            list.push(event);
            if event.kind == EventType::TaskOpened {
                opened.entry(task).or_insert(event);
            }
        }
        let mut roots = Vec::new();
        let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for task in order {
            let parent = opened
                .get(&task)
                .and_then(|e: &&Event| e.parent_task_id.clone())
                .filter(|p| by_task.contains_key(p) && *p != task);
            match parent {
                Some(parent) => children.entry(parent).or_default().push(task),
                None => roots.push(task),
            }
        }
        Tree {
            roots,
            children,
            events: by_task,
            opened,
        }
    }

    fn render(&self, task: &str, depth: usize, seq_width: usize, out: &mut String) {
        let indent = "  ".repeat(depth);
        let opened = self.opened.get(task);
        let agent = opened.and_then(|e| e.agent.as_deref());
        if task.is_empty() {
            let _ = write!(out, "{indent}events of no task");
        } else {
            let _ = write!(out, "{indent}task {}", printable(task));
        }
        if let Some(agent) = agent {
            let _ = write!(out, "  agent {}", printable(agent));
        }
        if let Some(parent) = opened.and_then(|e| e.parent_task_id.as_deref()) {
            let _ = write!(out, "  sub-task of {}", printable(parent));
        }
        out.push('\n');

        // The task's events, and its sub-tasks where they were opened.
        let events = self.events.get(task).map_or(&[][..], Vec::as_slice);
        let subtasks = self.children.get(task).map_or(&[][..], Vec::as_slice);
        let first_seq = |sub: &String| {
            self.events
                .get(sub)
                .and_then(|list| list.first())
                .map_or(u64::MAX, |e| e.seq)
        };
        let mut next_sub = subtasks.iter().peekable();
        for event in events {
            while let Some(sub) = next_sub.next_if(|sub| first_seq(sub) < event.seq) {
                self.render(sub, depth + 1, seq_width, out);
            }
            let _ = writeln!(out, "{indent}  {}", line(event, agent, seq_width));
        }
        for sub in next_sub {
            self.render(sub, depth + 1, seq_width, out);
        }
    }
}

/// One event: `#seq  time  type` and the fields that apply.
fn line(event: &Event, task_agent: Option<&str>, seq_width: usize) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(grant) = &event.grant_id {
        parts.push(short_id(grant));
    }
    if let Some(tool) = &event.tool {
        parts.push(printable(tool).into_owned());
    }
    if let Some(agent) = event.agent.as_deref().filter(|a| Some(*a) != task_agent) {
        parts.push(format!("agent {}", printable(agent)));
    }
    parts.push(format!("by {}", printable(&event.actor)));
    if let Some(decision) = &event.decision {
        parts.push(decision_text(decision));
    }
    if let Some(attrs) = event
        .attrs
        .as_ref()
        .map(attrs_text)
        .filter(|a| !a.is_empty())
    {
        parts.push(format!("attrs {attrs}"));
    }
    if let Some(parent) = &event.parent_grant_id {
        parts.push(format!("capped by {}", short_id(parent)));
    }
    if let Some(groups) = &event.approvals {
        let groups: Vec<String> = groups.iter().map(|g| printable(g).into_owned()).collect();
        parts.push(format!("needs approval from {}", groups.join(", ")));
    }
    match (&event.group, &event.approver) {
        (Some(group), Some(approver)) => parts.push(format!(
            "group {} by {}",
            printable(group),
            printable(approver)
        )),
        (Some(group), None) => parts.push(format!("group {}", printable(group))),
        (None, Some(approver)) => parts.push(format!("approver {}", printable(approver))),
        (None, None) => {}
    }
    if let Some(issuer) = &event.issuer {
        parts.push(format!("issuer {}", printable(issuer)));
    }
    if let Some(deadline) = event.deadline {
        parts.push(format!("deadline {deadline}"));
    }
    if let Some(until) = event.expires_at {
        parts.push(format!("until {until}"));
    }
    if let Some(uses) = event.uses_left {
        parts.push(if uses == 1 {
            "1 use left".to_string()
        } else {
            format!("{uses} uses left")
        });
    }
    if let Some(refs) = event.credential_refs.as_ref().filter(|r| !r.is_empty()) {
        let refs: Vec<String> = refs.iter().map(|r| printable(r).into_owned()).collect();
        parts.push(format!("credentials {}", refs.join(", ")));
    }
    if let Some(labels) = event.labels.as_ref().filter(|l| !l.is_empty()) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{}={}", printable(k), printable(v)))
            .collect();
        parts.push(format!("labels {}", labels.join(", ")));
    }
    if event.degraded {
        parts.push("written while degraded".to_string());
    }
    if let Some(reason) = &event.reason {
        parts.push(format!("reason \"{}\"", printable(reason)));
    }
    format!(
        "#{:<seq_width$}  {}  {:<18}  {}",
        event.seq,
        event.time,
        event.kind.as_str(),
        parts.join("  ")
    )
}

/// `args.path="/srv/a", task.approved=true`: the attributes a request
/// gave (redacted ones as their keyed hash), by dotted path, each value
/// cut to [`ATTR_VALUE_CHARS`] characters: a timeline line stays a line
/// when a call carried a file's contents.
fn attrs_text(attrs: &serde_json::Value) -> String {
    fn walk(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, inner) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, inner, out);
                }
            }
            other => out.push(format!(
                "{}={}",
                printable(prefix),
                excerpt(&other.to_string(), ATTR_VALUE_CHARS)
            )),
        }
    }
    let mut out = Vec::new();
    walk("", attrs, &mut out);
    out.join(", ")
}

/// The most characters of one attribute value `grant audit show` prints.
pub const ATTR_VALUE_CHARS: usize = 80;

/// `allow (rule, rule)`: the effect and the deciding rules' ids.
fn decision_text(decision: &serde_json::Value) -> String {
    let effect = decision
        .get("effect")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("decision");
    let rules: Vec<String> = decision
        .get("rules")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|rule| rule.get("id").and_then(serde_json::Value::as_str))
        .map(|id| printable(id).into_owned())
        .collect();
    if rules.is_empty() {
        printable(effect).into_owned()
    } else {
        format!("{} ({})", printable(effect), rules.join(", "))
    }
}

/// A generated id (`grant_` and 32 hex digits) cut to its first 8 digits,
/// as people compare ids; any other id whole.
fn short_id(id: &str) -> String {
    match id.split_once('_') {
        Some((prefix, hex)) if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            format!("{prefix}_{}", hex.get(..8).unwrap_or(hex))
        }
        _ => printable(id).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_dotted_paths_with_short_printable_values() {
        let long = "x".repeat(ATTR_VALUE_CHARS + 10);
        let attrs = serde_json::json!({
            "args": {"path": "/srv/a\u{1b}[2J", "content": long},
            "task.approved": true,
        });
        let text = attrs_text(&attrs);
        assert_eq!(
            text,
            format!(
                "args.content=\"{}…, args.path=\"/srv/a\\u001b[2J\", task.approved=true",
                "x".repeat(ATTR_VALUE_CHARS - 1)
            )
        );
    }
}
