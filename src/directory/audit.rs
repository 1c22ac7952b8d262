//! The audit log (DESIGN §4 "Admin authority"): one record per admin write
//! and per refused admin request.
//!
//! A write's record goes into the same atomic store batch as the change it
//! describes, so after a kill -9 the store has both or neither. Refusals
//! change nothing; their records are appended without waiting for a flush
//! (a flood of 401s must not become a flood of fsyncs) and are durable at
//! the next flush. Records are keyed by time (`audit/<ms, 16 digits>-<id>`),
//! so retention deletes a prefix of the key space. Nothing here ever holds
//! a secret or a token: summaries are built from names, ids and states.

use crate::domain::{format_ms, new_id, now_ms};
use crate::store::{Write, keys};
use serde::{Deserialize, Serialize};

/// Who made an audited request, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditActor {
    /// The caller's client ID, or `-` when it did not authenticate.
    pub client_id: String,
    /// Its application's name at the time, or `-`.
    pub name: String,
}

/// What an audited request acted on.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: &'static str,
    pub id: String,
    pub name: String,
}

impl Target {
    pub fn new(kind: &'static str, id: &str, name: &str) -> Self {
        Self {
            kind,
            id: id.to_owned(),
            name: name.to_owned(),
        }
    }

    /// A request refused before it reached a record: the endpoint itself.
    pub fn endpoint(method_and_path: &str) -> Self {
        Self::new("endpoint", method_and_path, method_and_path)
    }
}

/// How an audited request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Refused for lack of authentication or authority (401, 403, 429).
    Refused,
    /// Rejected by validation or state (400, 404, 409) or a store failure.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// One audit record as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub id: String,
    /// Unix ms.
    pub at: i64,
    pub actor: AuditActor,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub target_name: String,
    pub outcome: String,
    /// The HTTP status the request was answered with.
    pub status: u16,
    pub source_address: String,
    pub request_id: String,
    pub summary: String,
}

/// The request facts an audit record needs besides the change itself.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub source_address: String,
    pub request_id: String,
}

impl AuditEvent {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        actor: AuditActor,
        request: &RequestInfo,
        action: &str,
        target: &Target,
        outcome: Outcome,
        status: u16,
        summary: String,
    ) -> Self {
        Self {
            id: new_id(),
            at: now_ms(),
            actor,
            action: action.to_owned(),
            target_type: target.kind.to_owned(),
            target_id: target.id.clone(),
            target_name: target.name.clone(),
            outcome: outcome.as_str().to_owned(),
            status,
            source_address: request.source_address.clone(),
            request_id: request.request_id.clone(),
            // Bounded: a summary quotes names and messages, never bodies.
            summary: summary.chars().take(500).collect(),
        }
    }

    pub fn key(&self) -> String {
        keys::audit(self.at, &self.id)
    }

    /// The store write that records this event.
    pub fn write(&self) -> Write {
        Write::Put(self.key(), serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn view(&self) -> AuditView {
        AuditView {
            id: self.id.clone(),
            at: format_ms(self.at),
            actor: self.actor.clone(),
            action: self.action.clone(),
            target_type: self.target_type.clone(),
            target_id: self.target_id.clone(),
            target_name: self.target_name.clone(),
            outcome: self.outcome.clone(),
            status: self.status,
            source_address: self.source_address.clone(),
            request_id: self.request_id.clone(),
            summary: self.summary.clone(),
        }
    }
}

/// The API's view of an audit record.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    pub id: String,
    /// RFC 3339.
    pub at: String,
    pub actor: AuditActor,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub target_name: String,
    /// `success`, `refused` or `failed`.
    pub outcome: String,
    pub status: u16,
    pub source_address: String,
    pub request_id: String,
    pub summary: String,
}
