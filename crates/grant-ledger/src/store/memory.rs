//! The in-memory store, for tests and trials: everything in maps behind one
//! mutex, with the indexes the ledger's reads need. A transaction keeps an
//! undo log, so a closure that fails leaves nothing behind.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use crate::model::{Grant, Task, TaskState};
use crate::store::{Head, Store, StoreError, StoredEvent, Tx, Work};
use crate::time::Timestamp;

/// Keeps a ledger in process memory; it is gone when the process ends.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic inside a transaction was rolled back by the undo log
        // before unwinding reached here, or left the state as the last
        // completed put; either is consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Debug, Default)]
struct State {
    events: Vec<StoredEvent>,
    events_by_task: BTreeMap<String, Vec<usize>>,
    tasks: BTreeMap<String, Task>,
    subtasks: BTreeMap<String, BTreeSet<String>>,
    open_by_agent: BTreeMap<String, BTreeSet<String>>,
    task_deadlines: BTreeSet<(Timestamp, String)>,
    grants: BTreeMap<String, Grant>,
    grants_by_task: BTreeMap<String, BTreeSet<String>>,
    child_grants: BTreeMap<String, BTreeSet<String>>,
    live_expiries: BTreeSet<(Timestamp, String)>,
    blocked: BTreeSet<String>,
    meta: BTreeMap<String, String>,
}

enum Undo {
    Event,
    Task(String, Option<Task>),
    Grant(String, Option<Grant>),
    Blocked(String, bool),
    Meta(String, Option<String>),
}

impl State {
    fn replace_task(&mut self, id: &str, new: Option<Task>) -> Option<Task> {
        let old = match &new {
            Some(task) => self.tasks.insert(id.to_string(), task.clone()),
            None => self.tasks.remove(id),
        };
        if let Some(old) = &old {
            if let Some(parent) = &old.parent_task_id {
                remove_from(&mut self.subtasks, parent, id);
            }
            remove_from(&mut self.open_by_agent, &old.agent, id);
            if let Some(deadline) = old.deadline {
                self.task_deadlines.remove(&(deadline, id.to_string()));
            }
        }
        if let Some(task) = &new {
            if let Some(parent) = &task.parent_task_id {
                self.subtasks
                    .entry(parent.clone())
                    .or_default()
                    .insert(id.to_string());
            }
            if task.state == TaskState::Open {
                self.open_by_agent
                    .entry(task.agent.clone())
                    .or_default()
                    .insert(id.to_string());
                if let Some(deadline) = task.deadline {
                    self.task_deadlines.insert((deadline, id.to_string()));
                }
            }
        }
        old
    }

    fn replace_grant(&mut self, id: &str, new: Option<Grant>) -> Option<Grant> {
        let old = match &new {
            Some(grant) => self.grants.insert(id.to_string(), grant.clone()),
            None => self.grants.remove(id),
        };
        if let Some(old) = &old {
            remove_from(&mut self.grants_by_task, &old.task_id, id);
            if let Some(parent) = &old.parent_grant_id {
                remove_from(&mut self.child_grants, parent, id);
            }
            self.live_expiries.remove(&(old.expires_at, id.to_string()));
        }
        if let Some(grant) = &new {
            self.grants_by_task
                .entry(grant.task_id.clone())
                .or_default()
                .insert(id.to_string());
            if let Some(parent) = &grant.parent_grant_id {
                self.child_grants
                    .entry(parent.clone())
                    .or_default()
                    .insert(id.to_string());
            }
            if grant.state.is_live() {
                self.live_expiries
                    .insert((grant.expires_at, id.to_string()));
            }
        }
        old
    }

    fn set_blocked(&mut self, agent: &str, blocked: bool) -> bool {
        if blocked {
            !self.blocked.insert(agent.to_string())
        } else {
            self.blocked.remove(agent)
        }
    }

    fn pop_event(&mut self) {
        if let Some(event) = self.events.pop()
            && let Some(task) = &event.task_id
            && let Some(list) = self.events_by_task.get_mut(task)
        {
            list.pop();
        }
    }

    fn tasks_of(&self, ids: Option<&BTreeSet<String>>) -> Vec<Task> {
        ids.into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id).cloned())
            .collect()
    }

    fn grants_of(&self, ids: Option<&BTreeSet<String>>) -> Vec<Grant> {
        ids.into_iter()
            .flatten()
            .filter_map(|id| self.grants.get(id).cloned())
            .collect()
    }
}

fn remove_from(index: &mut BTreeMap<String, BTreeSet<String>>, key: &str, id: &str) {
    if let Some(set) = index.get_mut(key) {
        set.remove(id);
        if set.is_empty() {
            index.remove(key);
        }
    }
}

struct MemoryTx<'s> {
    state: &'s mut State,
    undo: Vec<Undo>,
    read_only: bool,
}

impl MemoryTx<'_> {
    fn writable(&self) -> Result<(), StoreError> {
        if self.read_only {
            Err(StoreError::unavailable("a read transaction cannot write"))
        } else {
            Ok(())
        }
    }

    fn rollback(&mut self) {
        while let Some(undo) = self.undo.pop() {
            match undo {
                Undo::Event => self.state.pop_event(),
                Undo::Task(id, old) => {
                    self.state.replace_task(&id, old);
                }
                Undo::Grant(id, old) => {
                    self.state.replace_grant(&id, old);
                }
                Undo::Blocked(agent, was) => {
                    self.state.set_blocked(&agent, was);
                }
                Undo::Meta(key, old) => match old {
                    Some(value) => {
                        self.state.meta.insert(key, value);
                    }
                    None => {
                        self.state.meta.remove(&key);
                    }
                },
            }
        }
    }
}

impl Tx for MemoryTx<'_> {
    fn head(&mut self) -> Result<Option<Head>, StoreError> {
        Ok(self.state.events.last().map(|e| Head {
            seq: e.seq,
            hash: e.hash.clone(),
        }))
    }

    fn append(&mut self, event: &StoredEvent) -> Result<(), StoreError> {
        self.writable()?;
        let expected = self.state.events.last().map_or(1, |e| e.seq + 1);
        if event.seq != expected {
            return Err(StoreError::corrupt(format!(
                "event {} appended where {expected} belongs",
                event.seq
            )));
        }
        let at = self.state.events.len();
        if let Some(task) = &event.task_id {
            self.state
                .events_by_task
                .entry(task.clone())
                .or_default()
                .push(at);
        }
        self.state.events.push(event.clone());
        self.undo.push(Undo::Event);
        Ok(())
    }

    fn events_after(&mut self, after: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        // seq n is at index n - 1: the chain is gapless from 1.
        let start = usize::try_from(after).unwrap_or(usize::MAX);
        Ok(self
            .state
            .events
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect())
    }

    fn events_of_tasks(&mut self, task_ids: &[String]) -> Result<Vec<StoredEvent>, StoreError> {
        let mut at: Vec<usize> = task_ids
            .iter()
            .filter_map(|id| self.state.events_by_task.get(id))
            .flatten()
            .copied()
            .collect();
        at.sort_unstable();
        at.dedup();
        Ok(at
            .into_iter()
            .filter_map(|i| self.state.events.get(i).cloned())
            .collect())
    }

    fn task(&mut self, task_id: &str) -> Result<Option<Task>, StoreError> {
        Ok(self.state.tasks.get(task_id).cloned())
    }

    fn put_task(&mut self, task: &Task) -> Result<(), StoreError> {
        self.writable()?;
        let old = self.state.replace_task(&task.task_id, Some(task.clone()));
        self.undo.push(Undo::Task(task.task_id.clone(), old));
        Ok(())
    }

    fn subtasks(&mut self, task_id: &str) -> Result<Vec<Task>, StoreError> {
        Ok(self.state.tasks_of(self.state.subtasks.get(task_id)))
    }

    fn open_tasks_of_agent(&mut self, agent: &str) -> Result<Vec<Task>, StoreError> {
        Ok(self.state.tasks_of(self.state.open_by_agent.get(agent)))
    }

    fn due_tasks(&mut self, now: Timestamp, limit: usize) -> Result<Vec<Task>, StoreError> {
        Ok(self
            .state
            .task_deadlines
            .iter()
            .take_while(|(deadline, _)| *deadline <= now)
            .take(limit)
            .filter_map(|(_, id)| self.state.tasks.get(id).cloned())
            .collect())
    }

    fn grant(&mut self, grant_id: &str) -> Result<Option<Grant>, StoreError> {
        Ok(self.state.grants.get(grant_id).cloned())
    }

    fn put_grant(&mut self, grant: &Grant) -> Result<(), StoreError> {
        self.writable()?;
        let old = self
            .state
            .replace_grant(&grant.grant_id, Some(grant.clone()));
        self.undo.push(Undo::Grant(grant.grant_id.clone(), old));
        Ok(())
    }

    fn grants_of_task(&mut self, task_id: &str) -> Result<Vec<Grant>, StoreError> {
        Ok(self.state.grants_of(self.state.grants_by_task.get(task_id)))
    }

    fn child_grants(&mut self, grant_id: &str) -> Result<Vec<Grant>, StoreError> {
        Ok(self.state.grants_of(self.state.child_grants.get(grant_id)))
    }

    fn due_grants(&mut self, now: Timestamp, limit: usize) -> Result<Vec<Grant>, StoreError> {
        Ok(self
            .state
            .live_expiries
            .iter()
            .take_while(|(expires_at, _)| *expires_at <= now)
            .take(limit)
            .filter_map(|(_, id)| self.state.grants.get(id).cloned())
            .collect())
    }

    fn is_blocked(&mut self, agent: &str) -> Result<bool, StoreError> {
        Ok(self.state.blocked.contains(agent))
    }

    fn set_blocked(&mut self, agent: &str, blocked: bool) -> Result<(), StoreError> {
        self.writable()?;
        let was = self.state.set_blocked(agent, blocked);
        self.undo.push(Undo::Blocked(agent.to_string(), was));
        Ok(())
    }

    fn meta(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.state.meta.get(key).cloned())
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.writable()?;
        let old = self.state.meta.insert(key.to_string(), value.to_string());
        self.undo.push(Undo::Meta(key.to_string(), old));
        Ok(())
    }
}

impl Store for MemoryStore {
    fn write(&self, work: &mut Work<'_>) -> Result<(), StoreError> {
        let mut state = self.lock();
        let mut tx = MemoryTx {
            state: &mut state,
            undo: Vec::new(),
            read_only: false,
        };
        let result = work(&mut tx);
        if result.is_err() {
            tx.rollback();
        }
        result
    }

    fn read(&self, work: &mut Work<'_>) -> Result<(), StoreError> {
        let mut state = self.lock();
        let mut tx = MemoryTx {
            state: &mut state,
            undo: Vec::new(),
            read_only: true,
        };
        work(&mut tx)
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }
}
