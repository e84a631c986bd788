//! Background tasks with a name, a kept handle and someone watching them: a task that
//! fails (returns an error, panics or is aborted) is logged with its name, counted in
//! `cidgate_task_restarts_total`, and run again after a pause; `/readyz` reports each
//! task's state.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedRwLockWriteGuard, RwLock, watch};
use tokio::task::{AbortHandle, JoinError, JoinHandle};

use super::Backoff;
use crate::metrics::{Metrics, TaskLabels};

/// Whether the gateway can serve while a task is down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Lookups need it: `/readyz` answers 503 while it is not running.
    Required,
    /// Reported by `/readyz`, which stays 200: its work waits (or is dropped and
    /// counted) until it runs again.
    Reported,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    Running,
    /// Failed; runs again after its backoff.
    Restarting,
    /// Ended its work (its queue closed, or the gateway is stopping): not restarted.
    Stopped,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Stopped => "stopped",
        }
    }
}

/// What the supervisor knows of one task.
#[derive(Clone, Debug)]
pub struct TaskStatus {
    pub state: TaskState,
    /// When it entered `state`.
    pub since: Instant,
    /// Times it failed and was (or is about to be) run again.
    pub restarts: u64,
    /// Why it last failed: logged, and kept here for diagnostics, never sent to clients.
    pub last_error: Option<String>,
    pub readiness: Readiness,
}

impl TaskStatus {
    /// The gateway is not ready while this is true.
    pub fn holds_up_readiness(&self) -> bool {
        self.readiness == Readiness::Required && self.state != TaskState::Running
    }
}

/// Every task's status, by name.
pub type Statuses = BTreeMap<&'static str, TaskStatus>;

/// Runs and watches the gateway's background tasks (cheap to clone).
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    backoff: Backoff,
    metrics: Arc<Metrics>,
    statuses: watch::Sender<Statuses>,
    tasks: Mutex<HashMap<&'static str, Handles>>,
    stopping: Mutex<bool>,
}

struct Handles {
    /// The task's current run.
    run: AbortHandle,
    /// The task that awaits each run and starts the next.
    watcher: Option<JoinHandle<()>>,
    /// Read before each restart; `kill` holds it to keep the task down.
    restart: Arc<RwLock<()>>,
}

/// A task killed with [`Supervisor::kill`]; it is restarted once this is dropped.
#[must_use = "the task restarts when this is dropped"]
pub struct Killed {
    _held: OwnedRwLockWriteGuard<()>,
}

impl Supervisor {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self::with_backoff(metrics, Backoff::DEFAULT)
    }

    pub fn with_backoff(metrics: Arc<Metrics>, backoff: Backoff) -> Self {
        Self {
            inner: Arc::new(Inner {
                backoff,
                metrics,
                statuses: watch::Sender::new(Statuses::new()),
                tasks: Mutex::default(),
                stopping: Mutex::new(false),
            }),
        }
    }

    /// Runs `factory()` as the task `name`, and again after each failure. A run that
    /// returns `Ok` has ended its work and is not restarted. Whatever must outlive a
    /// failed run (a queue's receiver, a state flag) belongs to the factory, not the run.
    ///
    /// # Panics
    /// When a task of that name was spawned already.
    pub fn spawn<F, Fut>(&self, name: &'static str, readiness: Readiness, factory: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let mut tasks = self.inner.handles();
        assert!(
            !tasks.contains_key(name),
            "two background tasks named {name}"
        );
        // Its restarts are exported from start, at zero.
        drop(
            self.inner
                .metrics
                .task_restarts
                .get_or_create(&TaskLabels { task: name }),
        );
        let run = tokio::spawn(factory());
        self.inner.statuses.send_modify(|statuses| {
            statuses.insert(
                name,
                TaskStatus {
                    state: TaskState::Running,
                    since: Instant::now(),
                    restarts: 0,
                    last_error: None,
                    readiness,
                },
            );
        });
        tasks.insert(
            name,
            Handles {
                run: run.abort_handle(),
                watcher: None,
                restart: Arc::default(),
            },
        );
        let watcher = tokio::spawn(watch_over(self.inner.clone(), name, factory, run));
        if let Some(handles) = tasks.get_mut(name) {
            handles.watcher = Some(watcher);
        }
    }

    /// Every task's status now.
    pub fn statuses(&self) -> Statuses {
        self.inner.statuses.borrow().clone()
    }

    /// Waits until `done` holds for the statuses; false if it did not within `within`.
    pub async fn wait_until(&self, within: Duration, done: impl FnMut(&Statuses) -> bool) -> bool {
        let mut statuses = self.inner.statuses.subscribe();
        matches!(
            tokio::time::timeout(within, statuses.wait_for(done)).await,
            Ok(Ok(_))
        )
    }

    /// Aborts the task's current run as a crash would and keeps it from restarting
    /// until the answer is dropped. For tests; `None` for an unknown task.
    #[doc(hidden)]
    pub fn kill(&self, name: &str) -> Option<Killed> {
        let tasks = self.inner.handles();
        let handles = tasks.get(name)?;
        let held = handles.restart.clone().try_write_owned().ok()?;
        handles.run.abort();
        Some(Killed { _held: held })
    }

    /// Ends every task without restarting any (after those with a graceful stop of
    /// their own, such as the lookup log's writer, have had it).
    pub fn shutdown(&self) {
        *self.inner.stopping() = true;
        for handles in self.inner.handles().values() {
            handles.run.abort();
            if let Some(watcher) = &handles.watcher {
                watcher.abort();
            }
        }
        self.inner.statuses.send_modify(|statuses| {
            for status in statuses.values_mut() {
                status.state = TaskState::Stopped;
            }
        });
    }
}

impl Inner {
    fn handles(&self) -> MutexGuard<'_, HashMap<&'static str, Handles>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopping(&self) -> MutexGuard<'_, bool> {
        self.stopping.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, name: &str, state: TaskState, failure: Option<String>) {
        self.statuses.send_modify(|statuses| {
            if let Some(status) = statuses.get_mut(name) {
                status.state = state;
                status.since = Instant::now();
                if let Some(failure) = failure {
                    status.restarts += 1;
                    status.last_error = Some(failure);
                }
            }
        });
    }
}

/// Awaits each run of the task, and starts the next after a failure.
async fn watch_over<F, Fut>(
    inner: Arc<Inner>,
    name: &'static str,
    factory: F,
    mut run: JoinHandle<anyhow::Result<()>>,
) where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut pause = None;
    let mut started = Instant::now();
    loop {
        let failure = match run.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e:#}")),
            Err(e) => Some(join_failure(e)),
        };
        let Some(failure) = failure.filter(|_| !*inner.stopping()) else {
            tracing::info!(task = name, "background task stopped");
            inner.set(name, TaskState::Stopped, None);
            return;
        };
        let wait = inner.backoff.next(pause, started.elapsed());
        pause = Some(wait);
        tracing::error!(
            task = name,
            error = %failure,
            restart_in_ms = wait.as_millis() as u64,
            "background task failed; restarting"
        );
        inner
            .metrics
            .task_restarts
            .get_or_create(&TaskLabels { task: name })
            .inc();
        inner.set(name, TaskState::Restarting, Some(failure));
        tokio::time::sleep(wait).await;
        let gate = inner.handles().get(name).map(|h| h.restart.clone());
        if let Some(gate) = gate {
            drop(gate.read().await);
        }
        {
            // Under the lock, so that a shutdown either sees this run or stops it first.
            let mut tasks = inner.handles();
            if *inner.stopping() {
                inner.set(name, TaskState::Stopped, None);
                return;
            }
            run = tokio::spawn(factory());
            if let Some(handles) = tasks.get_mut(name) {
                handles.run = run.abort_handle();
            }
        }
        started = Instant::now();
        inner.set(name, TaskState::Running, None);
        tracing::info!(task = name, "background task restarted");
    }
}

/// A panic's message, or that the run was aborted.
fn join_failure(e: JoinError) -> String {
    if !e.is_panic() {
        return "aborted".to_owned();
    }
    let panic = e.into_panic();
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    format!("panicked: {message}")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::{Backoff, Readiness, Supervisor, TaskState};
    use crate::metrics::Metrics;

    const WITHIN: Duration = Duration::from_secs(5);

    fn supervisor() -> Supervisor {
        let quick = Backoff {
            first: Duration::from_millis(1),
            max: Duration::from_millis(10),
            healthy: Duration::from_secs(60),
        };
        Supervisor::with_backoff(Metrics::new(), quick)
    }

    #[tokio::test]
    async fn a_task_that_panics_runs_again_and_the_restart_is_counted() {
        let jobs = supervisor();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        jobs.spawn("flaky", Readiness::Required, move || {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                assert!(run > 0, "the first run fails");
                std::future::pending().await
            }
        });
        assert!(
            jobs.wait_until(WITHIN, |s| s["flaky"].restarts == 1
                && s["flaky"].state == TaskState::Running)
                .await
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let status = &jobs.statuses()["flaky"];
        let error = status.last_error.as_deref().unwrap();
        assert!(error.contains("the first run fails"), "{error}");
        assert!(!status.holds_up_readiness());
        let metrics = jobs.inner.metrics.render();
        assert!(
            metrics.contains(r#"cidgate_task_restarts_total{task="flaky"} 1"#),
            "{metrics}"
        );
    }

    #[tokio::test]
    async fn a_task_that_returns_an_error_runs_again() {
        let jobs = supervisor();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        jobs.spawn("erring", Readiness::Reported, move || {
            let run = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                anyhow::ensure!(run >= 2, "run {run} fails");
                std::future::pending().await
            }
        });
        assert!(
            jobs.wait_until(WITHIN, |s| s["erring"].restarts == 2
                && s["erring"].state == TaskState::Running)
                .await
        );
        let status = &jobs.statuses()["erring"];
        assert_eq!(status.last_error.as_deref(), Some("run 1 fails"));
    }

    #[tokio::test]
    async fn a_task_that_ends_its_work_is_not_restarted() {
        let jobs = supervisor();
        jobs.spawn("once", Readiness::Required, || async { Ok(()) });
        assert!(
            jobs.wait_until(WITHIN, |s| s["once"].state == TaskState::Stopped)
                .await
        );
        let status = &jobs.statuses()["once"];
        assert_eq!(status.restarts, 0);
        // A required task that stopped is down for readiness.
        assert!(status.holds_up_readiness());
    }

    #[tokio::test]
    async fn a_killed_task_is_down_until_released_then_runs_again() {
        let jobs = supervisor();
        jobs.spawn("victim", Readiness::Required, std::future::pending);
        let killed = jobs.kill("victim").unwrap();
        assert!(
            jobs.wait_until(WITHIN, |s| s["victim"].state == TaskState::Restarting)
                .await
        );
        assert!(jobs.statuses()["victim"].holds_up_readiness());
        assert_eq!(
            jobs.statuses()["victim"].last_error.as_deref(),
            Some("aborted")
        );
        drop(killed);
        assert!(
            jobs.wait_until(WITHIN, |s| s["victim"].state == TaskState::Running)
                .await
        );
        assert!(jobs.kill("nobody").is_none());
    }

    #[tokio::test]
    async fn shutdown_stops_every_task_without_a_restart() {
        let jobs = supervisor();
        jobs.spawn("a", Readiness::Required, std::future::pending);
        jobs.spawn("b", Readiness::Reported, std::future::pending);
        jobs.shutdown();
        let statuses = jobs.statuses();
        assert!(
            statuses
                .values()
                .all(|s| s.state == TaskState::Stopped && s.restarts == 0)
        );
    }
}
