//! Background tasks: following other instances through the change feed
//! (directory, revocations, keys), and the scheduler (lastLogin flush,
//! cut-off and audit purges, revocation reconcile, key rotation).

use super::*;

/// Rotation without restart: a new key in `keys/` (from `appauth keys
/// generate`) is picked up within a second, or at once on SIGHUP. A key set
/// that fails to load leaves the current one in place.
pub(super) fn reload_keys(
    state: &SharedState,
    seen: &mut Vec<(String, u64, Option<std::time::SystemTime>)>,
    forced: bool,
) {
    let now = keys::dir_fingerprint(&state.config.keys.dir);
    if !forced && now == *seen {
        return;
    }
    match KeySet::load(&state.config.keys.dir, state.config.issuer.token_ttl_seconds) {
        Ok(set) if !set.is_empty() => {
            tracing::info!(keys = set.all().len(), "signing keys reloaded");
            state.issuer.replace_keys(set);
            *seen = now;
        }
        Ok(_) => tracing::error!("keys directory has no key any more; keeping the loaded keys"),
        Err(e) => tracing::error!(error = %e, "could not reload signing keys; keeping the loaded ones"),
    }
}

/// Follows the other instances sharing the store (a task of its own, so
/// no other periodic work delays it): woken by the store's notifications,
/// and polling too, so one lost notification costs at most one poll.
/// Revocations and key material learned here go to their owners; what
/// failed is retried on the next round.
pub(super) async fn follow_feed(state: SharedState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(signal) = state.directory.store().feed().map(|f| f.signal()) else {
        return;
    };
    let mut poll = tokio::time::interval(Duration::from_millis(250));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut down = false;
    // The first round pulls keys too: one may have been stored between
    // start-up's pull and the directory's first sequence number.
    let mut keys_dirty = true;
    let mut keys_seen = Vec::new();
    loop {
        tokio::select! {
            () = signal.notified() => {}
            _ = poll.tick() => {}
            _ = stop.changed() => return,
        }
        match state.directory.catch_up().await {
            Ok(others) => {
                if down {
                    down = false;
                    tracing::info!("following the shared store's changes again");
                }
                if state.directory.take_reloaded() {
                    keys_dirty = true;
                    if let Err(e) = state.revocations.reload().await {
                        tracing::error!(error = %e, "could not reload revocations after a full reload");
                    }
                }
                state.revocations.follow(&others);
                keys_dirty |= others.iter().any(|c| c.key.starts_with(crate::token::vault::SEALED));
            }
            Err(e) if !down => {
                down = true;
                tracing::warn!(error = %e, "cannot read the shared store's changes; tokens are issued from memory, and changes made elsewhere are caught up when it answers again");
                continue;
            }
            Err(_) => continue,
        }
        if let (true, Some(kek)) = (keys_dirty, state.vault.clone()) {
            let (store, dir) = (state.directory.store().clone(), state.config.keys.dir.clone());
            match tokio::task::spawn_blocking(move || crate::token::vault::pull(store.as_ref(), &kek, &dir)).await {
                Ok(Ok(written)) => {
                    keys_dirty = false;
                    if written > 0 {
                        reload_keys(&state, &mut keys_seen, true);
                    }
                }
                Ok(Err(e)) => tracing::error!(error = %e, "could not take the cluster's new key material; retrying"),
                Err(e) => tracing::error!(error = %e, "key material task failed; retrying"),
            }
        }
    }
}

/// Ends secret rotations' overlaps (a task of its own, so a slow reconcile
/// or purge never delays a revocation): four times a second, so a
/// verifier following Redis learns the overlap's cut-off well within a
/// second of its end.
pub(super) async fn end_overlaps(state: SharedState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match state.directory.end_overlaps(crate::domain::now_ms()).await {
            Ok(ended) => {
                for client_id in ended {
                    state.revocations.announce_client(&client_id).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "could not end a secret rotation's overlap; retrying"),
        }
    }
}

/// Periodic work: last-login write-back, purging lapsed revocation records,
/// refilling the revocation cache when it lost its contents, key rescans.
pub(super) async fn background_tasks(state: SharedState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut logins = tokio::time::interval(Duration::from_secs(5));
    let mut purge = tokio::time::interval(Duration::from_secs(30));
    // Retention is in days: scanning the log every 10 minutes is plenty.
    let mut audit_purge = tokio::time::interval(Duration::from_secs(600));
    let mut store_probe = tokio::time::interval(Duration::from_secs(1));
    let mut log_check = tokio::time::interval(Duration::from_secs(5));
    let mut access_flush = tokio::time::interval(Duration::from_millis(100));
    let mut token_audit = tokio::time::interval(Duration::from_millis(250));
    let mut warned_log_drops = false;
    // Twice a second: Redis is whole again within 2 s of any state loss.
    let mut reconcile = tokio::time::interval(Duration::from_millis(500));
    reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cache_down = false;
    let mut rescan = tokio::time::interval(Duration::from_secs(1));
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut keys_seen = keys::dir_fingerprint(&state.config.keys.dir);
    loop {
        let sighup = async {
            match hangup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = rescan.tick() => reload_keys(&state, &mut keys_seen, false),
            _ = sighup => reload_keys(&state, &mut keys_seen, true),
            _ = logins.tick() => {
                if let Err(e) = state.directory.flush_logins().await {
                    tracing::error!(error = %e, "could not save last-login times");
                }
            }
            _ = purge.tick() => {
                let now = crate::domain::now_ms() / 1000;
                if let Err(e) = state.directory.purge_cutoffs(now).await {
                    tracing::error!(error = %e, "could not purge lapsed client revocations");
                }
                if let Err(e) = state.revocations.purge_expired(now).await {
                    tracing::error!(error = %e, "could not purge lapsed token revocations");
                }
                state.grants.throttle.sweep(now * 1000);
                state.admin_limiter.sweep(now * 1000);
                state.admin_failures.sweep(now * 1000);
            }
            _ = access_flush.tick() => state.access_log.flush(&state.metrics),
            _ = token_audit.tick() => {
                if let Err(e) = state.directory.flush_token_audit().await {
                    tracing::error!(error = %e, "could not append federated-token audit records");
                }
            }
            _ = log_check.tick() => {
                let dropped = state.metrics.log_lines_dropped();
                if dropped > 0 && !warned_log_drops {
                    warned_log_drops = true;
                    tracing::warn!(dropped, "the log writer fell behind and dropped lines (requests were not slowed); see appauth_log_lines_dropped_total, and consider log.level=warn or a faster log sink");
                }
            }
            _ = store_probe.tick() => {
                // While writes fail, probe every second so recovery is seen
                // without waiting for the next admin write.
                if !state.directory.store().healthy() {
                    let store = state.directory.store().clone();
                    if let Ok(Ok(())) = tokio::task::spawn_blocking(move || store.probe_write()).await {
                        tracing::info!("store writes work again");
                    }
                }
            }
            _ = audit_purge.tick() => {
                let keep_ms = state.config.audit.retention_days * 86_400_000;
                if let Err(e) = state.directory.purge_audit(crate::domain::now_ms() - keep_ms).await {
                    tracing::error!(error = %e, "could not purge old audit records");
                }
            }
            _ = reconcile.tick() => {
                match state.revocations.reconcile(crate::domain::now_ms() / 1000).await {
                    Ok(_) if cache_down => {
                        cache_down = false;
                        tracing::info!(cache = state.revocations.cache_name(), "revocation cache reachable again");
                    }
                    Ok(_) => {}
                    Err(e) if !cache_down => {
                        cache_down = true;
                        state.metrics.redis_errors.inc();
                        tracing::warn!(cache = state.revocations.cache_name(), error = %e, "revocation cache unreachable; appauth answers from its store");
                    }
                    Err(_) => {
                        state.metrics.redis_errors.inc();
                    }
                }
            }
            _ = stop.changed() => return,
        }
    }
}
