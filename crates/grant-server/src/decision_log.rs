//! The decision log: one NDJSON line per decision (decision id, time,
//! request with redactions, decision, policy hash, latency), written by a
//! thread of its own so a slow disk never slows a decision. A line that
//! cannot be queued or written is counted in
//! `grant_decision_log_dropped_total`, never dropped silently.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use metrics::Counter;

/// Lines waiting for the writer at most; more are dropped (and counted).
const QUEUE: usize = 16_384;

enum Message {
    Line(String),
    Flush(SyncSender<()>),
}

/// A handle to the decision log; cheap to clone.
#[derive(Clone)]
pub struct DecisionLog {
    sender: Option<SyncSender<Message>>,
    dropped: Counter,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for DecisionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLog")
            .field("enabled", &self.sender.is_some())
            .finish_non_exhaustive()
    }
}

impl DecisionLog {
    /// No log.
    pub fn disabled(dropped: Counter) -> DecisionLog {
        DecisionLog {
            sender: None,
            dropped,
            writer: Arc::new(Mutex::new(None)),
        }
    }

    /// A log appended to `target` (a file, created 0600, or `-` for stdout).
    pub fn open(target: &str, dropped: Counter) -> Result<DecisionLog, String> {
        let out: Box<dyn Write + Send> = if target == "-" {
            Box::new(std::io::stdout())
        } else {
            let mut options = OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            Box::new(
                options
                    .open(target)
                    .map_err(|e| format!("decision log {target}: cannot open: {e}"))?,
            )
        };
        let (sender, receiver) = mpsc::sync_channel(QUEUE);
        let counter = dropped.clone();
        let writer = std::thread::Builder::new()
            .name("grant-decision-log".to_string())
            .spawn(move || write_lines(receiver, BufWriter::new(out), counter))
            .map_err(|e| format!("decision log: cannot start its writer: {e}"))?;
        Ok(DecisionLog {
            sender: Some(sender),
            dropped,
            writer: Arc::new(Mutex::new(Some(writer))),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.sender.is_some()
    }

    /// Queues one line (a JSON object, without its newline).
    pub fn write(&self, line: String) {
        let Some(sender) = &self.sender else {
            return;
        };
        match sender.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.increment(1);
            }
        }
    }

    /// Waits until every line queued before is written and flushed (at
    /// most `timeout`).
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(sender) = &self.sender else {
            return true;
        };
        let (done, wait) = mpsc::sync_channel(1);
        if sender.send(Message::Flush(done)).is_err() {
            return false;
        }
        wait.recv_timeout(timeout).is_ok()
    }

    /// Flushes and stops the writer (at shutdown).
    pub fn close(&self, timeout: Duration) -> bool {
        let flushed = self.flush(timeout);
        let _ = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        flushed
    }
}

fn write_lines(
    receiver: Receiver<Message>,
    mut out: BufWriter<Box<dyn Write + Send>>,
    dropped: Counter,
) {
    let mut unflushed = 0u64;
    loop {
        // Block for the first message, then take what is queued without
        // waiting, and flush once for the lot.
        let first = match receiver.recv_timeout(Duration::from_millis(200)) {
            Ok(message) => Some(message),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut pending_flush = Vec::new();
        let mut handle =
            |message: Message, unflushed: &mut u64, out: &mut BufWriter<_>| match message {
                Message::Line(line) => {
                    let written = out
                        .write_all(line.as_bytes())
                        .and_then(|()| out.write_all(b"\n"));
                    if written.is_err() {
                        dropped.increment(1);
                    } else {
                        *unflushed += 1;
                    }
                }
                Message::Flush(done) => pending_flush.push(done),
            };
        if let Some(message) = first {
            handle(message, &mut unflushed, &mut out);
            while let Ok(message) = receiver.try_recv() {
                handle(message, &mut unflushed, &mut out);
            }
        }
        if (unflushed > 0 || !pending_flush.is_empty()) && out.flush().is_err() {
            dropped.increment(unflushed);
        }
        unflushed = 0;
        for done in pending_flush {
            let _ = done.send(());
        }
    }
    let _ = out.flush();
}
