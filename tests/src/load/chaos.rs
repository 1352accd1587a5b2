//! Chaos during a load run: instances SIGKILLed and started again after a pause, the store
//! stopped for a while — at set offsets from the start of the steady window, while the
//! vehicles keep sending and the faults keep coming.
//!
//! Owns the schedule ([`ChaosEvent`], [`Chaos`]), carrying it out ([`run`]: each restart and
//! each store start on a task of its own, so a slow start does not delay what follows) and
//! the log of what happened when ([`ChaosLog`]). Does not own the instances
//! ([`super::instances`]) nor the store's server: stopping and starting it is the caller's
//! ([`StoreControl`], e.g. a test's own PostgreSQL cluster). An instance is never restarted
//! after the store comes back: it must recover by itself (the run reports one that exited).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::instances::Instances;

/// One chaos action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chaos {
    /// SIGKILL instance `instance` (0-based) and start it again on its config `down_for`
    /// later.
    Kill {
        /// Which instance (0-based).
        instance: usize,
        /// The pause before it is started again.
        down_for: Duration,
    },
    /// Stop the store ([`StoreControl`]) and start it again `down_for` later.
    StopStore {
        /// How long it stays down.
        down_for: Duration,
    },
}

/// A chaos action at an offset from the start of the steady window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChaosEvent {
    /// When, from the start of the steady window.
    pub at: Duration,
    /// What.
    pub what: Chaos,
}

/// What [`StoreControl`] is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAction {
    /// Take the store's server down.
    Stop,
    /// Bring it back.
    Start,
}

/// Stops and starts the store's server (blocking; run on a thread of its own).
#[derive(Clone)]
pub struct StoreControl(Arc<dyn Fn(StoreAction) -> Result<(), String> + Send + Sync>);

impl StoreControl {
    /// Wraps the function that stops or starts the server.
    pub fn new(f: impl Fn(StoreAction) -> Result<(), String> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    fn call(&self, action: StoreAction) -> Result<(), String> {
        (self.0)(action)
    }
}

impl fmt::Debug for StoreControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreControl(..)")
    }
}

impl PartialEq for StoreControl {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// What the chaos did, when (offsets from the start of the steady window).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChaosLog {
    /// Lines `+12.3 s: SIGKILL instance 2 (pid 4242)`, in order.
    pub lines: Vec<String>,
    /// Instances SIGKILLed.
    pub kills: u32,
    /// Instances started again.
    pub restarts: u32,
    /// Times the store was stopped.
    pub store_stops: u32,
    /// What failed (a kill of an instance that was down, a restart that did not come up, a
    /// store that did not stop or start).
    pub failures: Vec<String>,
}

impl ChaosLog {
    fn line(&mut self, t0: Instant, text: String) {
        self.lines
            .push(format!("+{:.1} s: {text}", t0.elapsed().as_secs_f64()));
    }
}

/// Every problem with a schedule, given the run's instances and store control.
pub(crate) fn problems(
    events: &[ChaosEvent],
    instances: usize,
    control: bool,
    child: bool,
    window: Duration,
) -> Vec<String> {
    let mut p = Vec::new();
    for e in events {
        if e.at >= window {
            p.push(format!(
                "chaos at {:?} is past the steady window ({window:?})",
                e.at
            ));
        }
        match e.what {
            Chaos::Kill { instance, .. } if instance >= instances => p.push(format!(
                "chaos kills instance {} of {instances} (instances count from 0)",
                instance
            )),
            Chaos::Kill { .. } if !child => p.push(
                "chaos kills need the cloud as child processes (an in-process cloud cannot be \
                 killed alone)"
                    .into(),
            ),
            Chaos::StopStore { .. } if !control => p.push(
                "chaos stopping the store needs a store control (a PostgreSQL server the run \
                 may stop and start)"
                    .into(),
            ),
            _ => {}
        }
    }
    p
}

/// Carries out `events` (sorted here) from `t0`; returns when every action, restarts and
/// store starts included, is done.
pub(crate) async fn run(
    mut events: Vec<ChaosEvent>,
    instances: Instances,
    control: Option<StoreControl>,
    t0: Instant,
) -> ChaosLog {
    events.sort_by_key(|e| e.at);
    let log = Arc::new(Mutex::new(ChaosLog::default()));
    let note = |f: &dyn Fn(&mut ChaosLog)| {
        if let Ok(mut l) = log.lock() {
            f(&mut l);
        }
    };
    let mut later = tokio::task::JoinSet::new();
    for e in events {
        tokio::time::sleep_until((t0 + e.at).into()).await;
        match e.what {
            Chaos::Kill { instance, down_for } => match instances.kill(instance).await {
                Ok(pid) => {
                    note(&|l| {
                        l.kills += 1;
                        l.line(t0, format!("SIGKILL instance {} (pid {pid})", instance + 1));
                    });
                    let (instances, log) = (instances.clone(), Arc::clone(&log));
                    later.spawn(async move {
                        tokio::time::sleep(down_for).await;
                        let started = Instant::now();
                        let result = instances.restart(instance).await;
                        if let Ok(mut l) = log.lock() {
                            match result {
                                Ok(api) => {
                                    l.restarts += 1;
                                    l.line(
                                        t0,
                                        format!(
                                            "instance {} started again after {:.1} s down \
                                             (listening after {:.1} s, API {api})",
                                            instance + 1,
                                            down_for.as_secs_f64(),
                                            started.elapsed().as_secs_f64()
                                        ),
                                    );
                                }
                                Err(err) => {
                                    let text = format!(
                                        "instance {} did not start again: {err}",
                                        instance + 1
                                    );
                                    l.line(t0, text.clone());
                                    l.failures.push(text);
                                }
                            }
                        }
                    });
                }
                Err(err) => note(&|l| {
                    let text = format!("kill of instance {} skipped: {err}", instance + 1);
                    l.line(t0, text.clone());
                    l.failures.push(text);
                }),
            },
            Chaos::StopStore { down_for } => {
                let Some(control) = control.clone() else {
                    continue;
                };
                let stop = control.clone();
                let stopped = tokio::task::spawn_blocking(move || stop.call(StoreAction::Stop))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r);
                match stopped {
                    Ok(()) => note(&|l| {
                        l.store_stops += 1;
                        l.line(t0, "store stopped".into());
                    }),
                    Err(err) => note(&|l| {
                        let text = format!("the store did not stop: {err}");
                        l.line(t0, text.clone());
                        l.failures.push(text);
                    }),
                }
                let log = Arc::clone(&log);
                later.spawn(async move {
                    tokio::time::sleep(down_for).await;
                    let started =
                        tokio::task::spawn_blocking(move || control.call(StoreAction::Start))
                            .await
                            .map_err(|e| e.to_string())
                            .and_then(|r| r);
                    if let Ok(mut l) = log.lock() {
                        match started {
                            Ok(()) => l.line(
                                t0,
                                format!(
                                    "store started again after {:.1} s",
                                    down_for.as_secs_f64()
                                ),
                            ),
                            Err(err) => {
                                let text = format!("the store did not start again: {err}");
                                l.line(t0, text.clone());
                                l.failures.push(text);
                            }
                        }
                    }
                });
            }
        }
    }
    while later.join_next().await.is_some() {}
    let mut out = log.lock().map(|l| l.clone()).unwrap_or_default();
    // Lines were pushed from several tasks: keep them in time order.
    out.lines.sort_by(|a, b| offset(a).total_cmp(&offset(b)));
    out
}

fn offset(line: &str) -> f64 {
    line.trim_start_matches('+')
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_names_each_problem() {
        let s = Duration::from_secs;
        let events = [
            ChaosEvent {
                at: s(5),
                what: Chaos::Kill {
                    instance: 3,
                    down_for: s(2),
                },
            },
            ChaosEvent {
                at: s(50),
                what: Chaos::StopStore { down_for: s(10) },
            },
        ];
        let p = problems(&events, 3, false, true, s(40));
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("instance 3 of 3"));
        assert!(p[1].contains("past the steady window"));
        assert!(p[2].contains("store control"));
        assert!(problems(&events[..1], 4, false, true, s(40)).is_empty());
        assert_eq!(problems(&events[..1], 4, false, false, s(40)).len(), 1);
    }

    #[test]
    fn log_lines_sort_by_their_offset() {
        let mut lines = ["+10.5 s: b".to_owned(), "+2.0 s: a".to_owned()];
        lines.sort_by(|a, b| offset(a).total_cmp(&offset(b)));
        assert_eq!(lines[0], "+2.0 s: a");
    }
}
