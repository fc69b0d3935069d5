//! Supervision of the daemon's long-running tasks (the IMAP poller, the outbox worker, the
//! watchdog): each runs under a name in one [`JoinSet`], and the first to end, by returning,
//! failing or panicking, cancels the shutdown token so the others finish the transaction in
//! flight and stop. A task that ends while no shutdown was asked for is a fault: [`Supervisor::run`]
//! names it and its cause in a [`TaskExit`], so the process exits non-zero and systemd's
//! `Restart=on-failure` starts it again. When the token fired first, ending is the normal way out.
//!
//! Talks to nothing but tokio; [`crate::daemon`] spawns the tasks and maps the error to the exit.

use std::collections::HashMap;
use std::time::Duration;

use tokio::task::{Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

/// Why a supervised task ended when it should not have.
#[derive(Debug, thiserror::Error)]
pub enum Exit {
    /// It returned Ok although no shutdown had been asked for.
    #[error("stopped on its own before shutdown was requested")]
    Returned,
    /// It returned an error.
    #[error("failed: {0:#}")]
    Failed(anyhow::Error),
    /// It panicked (the panic's message).
    #[error("panicked: {0}")]
    Panicked(String),
    /// It was still running this long after the token fired, and was aborted.
    #[error("did not stop within {0:?} of shutdown and was aborted")]
    Hung(Duration),
}

/// The task that ended first (or the first fault found while the others stopped), and why.
#[derive(Debug, thiserror::Error)]
#[error("the {task} task {cause}")]
pub struct TaskExit {
    pub task: &'static str,
    pub cause: Exit,
}

/// Named tasks under one shutdown token.
#[derive(Default)]
pub struct Supervisor {
    set: JoinSet<anyhow::Result<()>>,
    names: HashMap<Id, &'static str>,
}

impl Supervisor {
    pub fn new() -> Supervisor {
        Supervisor::default()
    }

    /// Starts `task` under `name`. The task must watch the token passed to [`Supervisor::run`]
    /// and return once it fires (after finishing its work in flight).
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let handle = self.set.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// Waits for the first task to end (or for `cancel`), then cancels `cancel` and waits up to `grace` for the
    /// rest (aborting those still running after that). Ok when `cancel` had fired before the
    /// first task ended and every task then ended cleanly; else the first fault, which is also
    /// logged with the whole chain.
    pub async fn run(mut self, cancel: &CancellationToken, grace: Duration) -> Result<(), TaskExit> {
        let first = tokio::select! {
            next = self.set.join_next_with_id() => match next {
                Some(ended) => Some(ended),
                None => return Ok(()),
            },
            () = cancel.cancelled() => None,
        };
        let mut fault = first.and_then(|ended| self.judge(ended, cancel.is_cancelled()));
        if let Some(f) = &fault {
            tracing::error!(task = f.task, cause = %f.cause, "a task ended; stopping the others");
        }
        cancel.cancel();
        let drained = tokio::time::timeout(grace, async {
            while let Some(next) = self.set.join_next_with_id().await {
                if let Some(f) = self.judge(next, true) {
                    tracing::error!(task = f.task, cause = %f.cause, "a task failed while stopping");
                    fault.get_or_insert(f);
                }
            }
        })
        .await;
        if drained.is_err() {
            let mut running: Vec<&'static str> = Vec::new();
            self.set.abort_all();
            while let Some(next) = self.set.join_next_with_id().await {
                if let Err(e) = next
                    && e.is_cancelled()
                {
                    running.push(self.name(e.id()));
                }
            }
            for task in running {
                tracing::error!(task, ?grace, "task did not stop in time; aborted");
                fault.get_or_insert(TaskExit { task, cause: Exit::Hung(grace) });
            }
        }
        fault.map_or(Ok(()), Err)
    }

    fn name(&self, id: Id) -> &'static str {
        self.names.get(&id).copied().unwrap_or("unnamed")
    }

    /// The fault in one task's end, if it is one. `shutting_down`: the token had fired.
    fn judge(&self, ended: Result<(Id, anyhow::Result<()>), JoinError>, shutting_down: bool) -> Option<TaskExit> {
        match ended {
            Ok((_, Ok(()))) if shutting_down => None,
            Ok((id, Ok(()))) => Some(TaskExit { task: self.name(id), cause: Exit::Returned }),
            Ok((id, Err(e))) => Some(TaskExit { task: self.name(id), cause: Exit::Failed(e) }),
            Err(e) => {
                let task = self.name(e.id());
                if e.is_panic() {
                    Some(TaskExit { task, cause: Exit::Panicked(panic_message(e.into_panic())) })
                } else {
                    // Aborted from outside the set: nothing here aborts before the grace ends.
                    Some(TaskExit { task, cause: Exit::Failed(anyhow::anyhow!("cancelled: {e}")) })
                }
            }
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_string(),
            Err(_) => "(no message)".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Waits for the token, then "finishes its transaction" (sets `done`) and returns Ok.
    fn steady(cancel: &CancellationToken, done: &Arc<AtomicBool>) -> impl Future<Output = anyhow::Result<()>> + use<> {
        let (cancel, done) = (cancel.clone(), Arc::clone(done));
        async move {
            cancel.cancelled().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            done.store(true, Ordering::SeqCst);
            Ok(())
        }
    }

    const GRACE: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn a_task_that_returns_early_stops_the_others_and_is_named() {
        let cancel = CancellationToken::new();
        let done = Arc::new(AtomicBool::new(false));
        let mut s = Supervisor::new();
        s.spawn("worker", steady(&cancel, &done));
        s.spawn("poller", async { Ok(()) });
        let err = s.run(&cancel, GRACE).await.expect_err("an early return is a fault");
        assert_eq!(err.task, "poller");
        assert!(matches!(err.cause, Exit::Returned), "{err}");
        assert!(cancel.is_cancelled(), "the others were told to stop");
        assert!(done.load(Ordering::SeqCst), "the worker finished its work in flight before run returned");
    }

    #[tokio::test]
    async fn a_task_that_fails_is_named_with_its_cause() {
        let cancel = CancellationToken::new();
        let done = Arc::new(AtomicBool::new(false));
        let mut s = Supervisor::new();
        s.spawn("watchdog", steady(&cancel, &done));
        s.spawn("outbox worker", async { Err(anyhow::anyhow!("database is gone")) });
        let err = s.run(&cancel, GRACE).await.expect_err("an error is a fault");
        assert_eq!(err.to_string(), "the outbox worker task failed: database is gone");
        assert!(done.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_task_that_panics_is_named_with_its_message() {
        let cancel = CancellationToken::new();
        let done = Arc::new(AtomicBool::new(false));
        let mut s = Supervisor::new();
        s.spawn("worker", steady(&cancel, &done));
        s.spawn("poller", async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            panic!("index out of bounds in the test");
        });
        let err = s.run(&cancel, GRACE).await.expect_err("a panic is a fault");
        assert_eq!(err.task, "poller");
        match &err.cause {
            Exit::Panicked(m) => assert_eq!(m, "index out of bounds in the test"),
            other => panic!("expected a panic, got {other}"),
        }
        assert!(done.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_clean_cancel_returns_ok_after_every_task_finished() {
        let cancel = CancellationToken::new();
        let (a, b) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let mut s = Supervisor::new();
        s.spawn("poller", steady(&cancel, &a));
        s.spawn("worker", steady(&cancel, &b));
        let signal = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            signal.cancel();
        });
        s.run(&cancel, GRACE).await.expect("a requested shutdown is clean");
        assert!(a.load(Ordering::SeqCst) && b.load(Ordering::SeqCst), "both finished before run returned");
    }

    #[tokio::test]
    async fn a_failure_while_stopping_is_still_reported() {
        let cancel = CancellationToken::new();
        let mut s = Supervisor::new();
        let c = cancel.clone();
        s.spawn("worker", async move {
            c.cancelled().await;
            Err(anyhow::anyhow!("could not release claims"))
        });
        cancel.cancel();
        let err = s.run(&cancel, GRACE).await.expect_err("a failure after the signal still counts");
        assert_eq!(err.task, "worker");
        assert!(matches!(err.cause, Exit::Failed(_)));
    }

    #[tokio::test]
    async fn a_task_that_ignores_the_token_is_aborted_after_the_grace() {
        let cancel = CancellationToken::new();
        let mut s = Supervisor::new();
        s.spawn("stubborn", async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        });
        s.spawn("poller", async { Ok(()) });
        let started = std::time::Instant::now();
        let err = s.run(&cancel, Duration::from_millis(50)).await.expect_err("early return");
        assert_eq!(err.task, "poller", "the first fault is the one reported");
        assert!(started.elapsed() < Duration::from_secs(5), "the stubborn task was aborted");

        let cancel = CancellationToken::new();
        let mut s = Supervisor::new();
        s.spawn("stubborn", async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        });
        cancel.cancel();
        let err = s.run(&cancel, Duration::from_millis(50)).await.expect_err("hung on shutdown");
        assert_eq!(err.task, "stubborn");
        assert!(matches!(err.cause, Exit::Hung(_)));
    }
}
