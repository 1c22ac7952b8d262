//! The pool that runs admin list, search and CSV work (DESIGN §9: nobody may
//! exhaust the CPU the token endpoint needs).
//!
//! Filtering and sorting 100,000 applications takes tens of milliseconds of
//! CPU. On the connection runtimes it would stall every connection of that
//! core; on tokio's blocking pool it would compete with them as an equal, and
//! the scheduler's time slices showed up as 30 ms token p99s. These threads
//! run at the lowest scheduling priority (nice 19), and there are half as
//! many as cores: whenever a token request is runnable it gets the core, and
//! list queries use what is left.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

pub struct ListPool {
    jobs: Mutex<Sender<Job>>,
}

impl ListPool {
    /// Starts `threads` low-priority workers; they end when the pool is dropped.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("appauth-list-{i}"))
                .spawn(move || worker(&rx))?;
        }
        Ok(Self { jobs: Mutex::new(tx) })
    }

    /// Runs `work` on the pool; `None` if the pool is gone or the work panicked.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(work());
        });
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).send(job).ok()?;
        rx.await.ok()
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>) {
    // On Linux, setpriority(PRIO_PROCESS, 0) applies to the calling thread.
    if let Err(e) = rustix::process::setpriority_process(None, 19) {
        tracing::warn!(error = %e, "could not lower the list-query threads' priority");
    }
    loop {
        let job = jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
        match job {
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}
