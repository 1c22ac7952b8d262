//! The one write path's machinery: the write lock with a catch-up first,
//! persisting a checked batch (with `apply_after` on a shared store), retrying
//! a write that collided with another instance, and the audit record that goes
//! in every batch (success) or after it (refusal).

use super::*;

/// Refuses a change that would leave no enabled application holding
/// *System administrator* on the tenant (nobody could administer appauth).
pub(super) fn keep_an_administrator(cat: &Catalog, losing: &str, what: &str) -> Result<(), DirectoryError> {
    if cat.system_administrators() == [losing] {
        let name = cat.apps.get(losing).map_or("", |r| r.app.name.as_str());
        return Err(DirectoryError::Conflict(format!(
            "cannot {what}: application {name:?} is the last enabled application holding System administrator on the tenant, and appauth would be left with no administrator; grant that role to another application first"
        )));
    }
    Ok(())
}

/// The application behind a target id, or 404.
pub(super) fn app_of(cat: &Catalog, id: &str) -> Result<Application, DirectoryError> {
    cat.apps
        .get(id)
        .map(|r| r.app.clone())
        .ok_or_else(|| not_found("application", id))
}

impl Directory {
    /// Makes a directory write durable. With a change feed, only if no
    /// other instance changed the directory since this catalog was caught
    /// up (`Stale` otherwise), so checks made on it hold cluster-wide.
    pub(super) async fn persist(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let store = self.store.clone();
        let seen = self.seen.load(Ordering::Acquire);
        tokio::task::spawn_blocking(move || match store.feed() {
            Some(feed) => feed.apply_after(seen, &writes).map(|_| ()),
            None => store.apply(&writes),
        })
        .await
        .map_err(|e| StoreError::Io(format!("store task failed: {e}")))?
    }

    /// Persists a create. A duplicate the database's own constraint caught
    /// (a writer that bypassed the catalog check) is audited like any other
    /// refused write, not only answered with a 409.
    pub(super) async fn persist_create(
        &self,
        writes: Vec<Write>,
        actor: &Actor,
        action: &str,
        target: &Target,
    ) -> Result<(), DirectoryError> {
        match self.persist(writes).await {
            Ok(()) => Ok(()),
            Err(e @ StoreError::Duplicate { .. }) => Err(self.reject(actor, action, target, e.into()).await),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs a checked write again when another instance's change landed
    /// between its catch-up and its commit (`Stale`: nothing was written).
    /// Each attempt catches up and checks again from scratch, so a retry can
    /// only end in the answer the write would have had a moment later —
    /// including a 409 "name taken" when the other change took the name.
    /// Through a load balancer, concurrent admin writes are normal; without
    /// this every one of them risked a 409 the client had to retry.
    pub(super) async fn retry_stale<T, F, Fut>(&self, mut attempt: F) -> Result<T, DirectoryError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, DirectoryError>>,
    {
        // Bounded by time, not a count: under a burst from two instances a
        // write can lose several races in a row (seen with 8 attempts and
        // 24 concurrent creates), and 3 s is still well inside a client's
        // timeout. The back-off grows and is jittered, so the instances that
        // collided spread out.
        const PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);
        let start = std::time::Instant::now();
        let mut n: u64 = 0;
        loop {
            match attempt().await {
                Err(DirectoryError::Stale) if start.elapsed() < PATIENCE => {
                    n += 1;
                    let mut b = [0u8; 1];
                    let _ = ring::rand::SecureRandom::fill(&self.rng, &mut b);
                    let ms = (n * (1 + u64::from(b[0] % 8))).min(50 + u64::from(b[0] % 50));
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                }
                other => return other,
            }
        }
    }

    /// The write lock, with the catalog caught up with other instances'
    /// changes (a no-op without a change feed). A failed catch-up is not
    /// an error here: the write's own persist then fails the same way.
    pub(super) async fn lock_for_write(&self) -> tokio::sync::MutexGuard<'_, ()> {
        let guard = self.writes.lock().await;
        if self.store.feed().is_some()
            && let Err(e) = self.catch_up_locked().await
        {
            tracing::warn!(error = %e, "could not catch up with other instances before a write");
        }
        guard
    }

    /// The audit record of a successful write, to go in the write's batch.
    pub(super) fn success(actor: &Actor, action: &str, target: &Target, status: u16, summary: String) -> Write {
        AuditEvent::new(
            actor.audit_actor(),
            &actor.request,
            action,
            target,
            Outcome::Success,
            status,
            summary,
        )
        .write()
    }

    /// Records a refused or failed write (nothing else changes) and hands
    /// the error back. Appended without a flush, like other refusals: no
    /// change depends on it, and a flood of refused writes must not become
    /// a flood of fsyncs under the write lock. A store failure is not
    /// audited: the store is what failed.
    pub(super) async fn reject(
        &self,
        actor: &Actor,
        action: &str,
        target: &Target,
        e: DirectoryError,
    ) -> DirectoryError {
        // Nothing happened: the store failed, or the attempt will be retried.
        if matches!(e, DirectoryError::Store(_) | DirectoryError::Stale) {
            return e;
        }
        let outcome = if matches!(e, DirectoryError::Forbidden(_)) {
            Outcome::Refused
        } else {
            Outcome::Failed
        };
        let ev = AuditEvent::new(
            actor.audit_actor(),
            &actor.request,
            action,
            target,
            outcome,
            e.status(),
            e.to_string(),
        );
        let store = self.store.clone();
        let appended = tokio::task::spawn_blocking(move || store.append(&[ev.write()])).await;
        if !matches!(appended, Ok(Ok(()))) {
            tracing::error!(action, "could not record a refused admin write in the audit log");
        }
        e
    }
}
