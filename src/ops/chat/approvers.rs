//! Approvers: a fixed policy, and pending approvals answered over HTTP.

use super::*;

/// Answer every approval the same way, without asking anyone: a key's
/// `deny`, or `chat --approve deny|once|session`. (Asking a person on a
/// terminal is the CLI's approver, `cli/chat.rs`.)
pub struct PolicyApprover {
    pub policy: ApprovePolicy,
    pub decided_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovePolicy {
    /// Deny every request
    Deny,
    /// Approve each request once
    Once,
    /// Approve the command pattern for the rest of the session
    Session,
}

impl Approver for PolicyApprover {
    fn denies_all(&self) -> Option<String> {
        (self.policy == ApprovePolicy::Deny).then(|| self.decided_by.clone())
    }

    fn decide(&self, _req: ApprovalRequest) -> BoxFuture<Decision> {
        let choice = match self.policy {
            ApprovePolicy::Deny => ApprovalChoice::Deny,
            ApprovePolicy::Once => ApprovalChoice::Once,
            ApprovePolicy::Session => ApprovalChoice::Session,
        };
        let decided_by = self.decided_by.clone();
        Box::pin(async move {
            Decision {
                choice,
                decided_by,
                stop_run: false,
            }
        })
    }
}

/// Approval requests waiting for an answer from another request (the HTTP
/// mode: the chat stream shows the request, `POST …/approval` answers it).
/// One pending request per session at a time, as Hermes asks one by one.
///
/// In a fleet ([`PendingApprovals::join_fleet`]) each waiting request is
/// also put into the fleet's inbox (store/pg/approvals.rs), so a replica
/// other than the one running the turn can list and answer it; the answer
/// comes back to this one by `NOTIFY`.
#[derive(Default)]
pub struct PendingApprovals {
    pub(super) inner: std::sync::Mutex<std::collections::HashMap<String, Pending>>,
    fleet: std::sync::OnceLock<FleetInbox>,
}

/// The fleet's inbox (read and written through the app's connection to the
/// fleet's database, which reconnects after a restart) and this replica's
/// name in it.
struct FleetInbox {
    app: crate::app::App,
    replica: String,
}

pub(super) struct Pending {
    pub(super) owner_id: String,
    pub(super) since: String,
    pub(super) request: ApprovalRequest,
    pub(super) asked_by: AskedBy,
    pub(super) tx: tokio::sync::oneshot::Sender<Decision>,
}

impl PendingApprovals {
    /// An [`Approver`] for one turn of `owner`'s session that waits up to
    /// `timeout` for [`PendingApprovals::answer`], then denies.
    pub fn approver(
        self: &std::sync::Arc<Self>,
        owner: &User,
        timeout: std::time::Duration,
        asked_by: AskedBy,
    ) -> ChannelApprover {
        ChannelApprover {
            registry: self.clone(),
            owner_id: owner.id.clone(),
            timeout,
            asked_by,
        }
    }

    /// Shares this replica's waiting requests with the fleet's others under
    /// `replica`. Answers for it are announced on the fleet's notification
    /// channel; whoever listens hands what it hears to [`Self::heard`].
    pub fn join_fleet(&self, app: crate::app::App, replica: String) {
        let _ = self.fleet.set(FleetInbox { app, replica });
    }

    /// What a listener on the fleet's database heard: an answer for this
    /// replica, or a reason to look (listening began, so answers given
    /// before are looked up; a quiet while, should a notification have
    /// been missed).
    pub fn heard(&self, h: &crate::store::pg::Heard) {
        use crate::store::pg::Heard;
        let Some(f) = self.fleet.get() else { return };
        let ours = match h {
            Heard::Listening | Heard::Quiet => true,
            Heard::Note { channel, payload } => {
                *channel == crate::store::pg::approvals::CHANNEL && *payload == f.replica
            }
        };
        if ours {
            self.collect_answers();
        }
    }

    /// Puts this replica's request waiting in `session` into the fleet's inbox.
    fn put_in_inbox(&self, session: &str, view: &PendingView) -> Result<()> {
        let Some(f) = self.fleet.get() else {
            return Ok(());
        };
        let w = crate::store::pg::approvals::Waiting {
            session_id: session.to_string(),
            replica: f.replica.clone(),
            owner_id: view.owner_id.clone(),
            view: serde_json::to_string(view).unwrap_or_default(),
        };
        f.app
            .with_fleet_db(|pg| crate::store::pg::approvals::put(pg, &w))
    }

    /// Takes it out again (answered, or given up).
    fn take_out_of_inbox(&self, session: &str) -> Result<()> {
        let Some(f) = self.fleet.get() else {
            return Ok(());
        };
        f.app
            .with_fleet_db(|pg| crate::store::pg::approvals::remove(pg, session, &f.replica))
    }

    /// Hands the answers other replicas gave to this one's waiting turns.
    fn collect_answers(&self) {
        let Some(f) = self.fleet.get() else { return };
        let answers = match f
            .app
            .with_fleet_db(|pg| crate::store::pg::approvals::take_answers(pg, &f.replica))
        {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("approvals inbox: {}", e.message);
                return;
            }
        };
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for (session, choice, decided_by) in answers {
            let Ok(choice) = ApprovalChoice::parse(&choice) else {
                continue;
            };
            if let Some(p) = map.remove(&session) {
                let _ = p.tx.send(Decision {
                    choice,
                    decided_by,
                    stop_run: false,
                });
            }
        }
    }

    /// The request waiting in a session, if any.
    pub fn pending(&self, session_id: &str) -> Option<ApprovalRequest> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.get(session_id).map(|p| p.request.clone())
    }

    /// The requests `user` may answer (their own sessions'; an admin's:
    /// all), oldest first: the dashboard's "Pending approvals".
    pub fn list_for(&self, user: &User) -> Vec<PendingView> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<PendingView> = map
            .values()
            .filter(|p| p.owner_id == user.id || user.role == crate::store::users::Role::Admin)
            .map(|p| PendingView {
                request: p.request.clone(),
                owner_id: p.owner_id.clone(),
                waiting_since: p.since.clone(),
                asked_by: p.asked_by.clone(),
            })
            .collect();
        drop(map);
        if let Some(f) = self.fleet.get() {
            // Other replicas' (this one's are listed above). The inbox away
            // leaves this replica's own list.
            let theirs = f
                .app
                .with_fleet_db(crate::store::pg::approvals::waiting)
                .unwrap_or_default();
            v.extend(
                theirs
                    .into_iter()
                    .filter(|w| w.replica != f.replica)
                    .filter(|w| {
                        w.owner_id == user.id || user.role == crate::store::users::Role::Admin
                    })
                    .filter_map(|w| serde_json::from_str::<PendingView>(&w.view).ok()),
            );
        }
        v.sort_by(|a, b| a.waiting_since.cmp(&b.waiting_since));
        v
    }

    /// Answer the waiting request of `session_id` as `by`: only the session
    /// owner or an admin may (docs/design.md §4).
    pub fn answer(&self, session_id: &str, by: &User, choice: ApprovalChoice) -> Result<()> {
        let missing =
            || Error::not_found(format!("no approval is pending in session {session_id}"));
        let may = |owner_id: &str| {
            if owner_id != by.id && by.role != crate::store::users::Role::Admin {
                return Err(Error::permission(
                    "only the session owner or an admin may answer this approval",
                ));
            }
            Ok(())
        };
        let decided_by = format!("{} ({})", by.username, by.role);
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = map.get(session_id) {
            may(&p.owner_id)?;
            let p = map.remove(session_id).expect("present");
            let _ = p.tx.send(Decision {
                choice,
                decided_by,
                stop_run: false,
            });
            return Ok(());
        }
        drop(map);
        // Waiting on another replica: answered through the fleet's inbox.
        let Some(f) = self.fleet.get() else {
            return Err(missing());
        };
        use crate::store::pg::approvals;
        let Some(owner) = f
            .app
            .with_fleet_db(|pg| approvals::owner_of(pg, session_id))?
        else {
            return Err(missing());
        };
        may(&owner)?;
        let answered = f
            .app
            .with_fleet_db(|pg| approvals::answer(pg, session_id, choice.as_str(), &decided_by))?;
        if !answered {
            return Err(missing());
        }
        Ok(())
    }

    /// The server itself denies what is still pending when it shuts down:
    /// no account answers, so none is checked (or made up); the decision
    /// says who it was.
    pub fn deny_at_shutdown(&self, session_id: &str) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = map.remove(session_id) {
            let _ = p.tx.send(Decision {
                choice: ApprovalChoice::Deny,
                decided_by: "serve (shutting down)".into(),
                stop_run: false,
            });
        }
    }
}

/// A waiting approval request as listed to whoever may answer it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PendingView {
    #[serde(flatten)]
    pub request: ApprovalRequest,
    pub owner_id: String,
    pub waiting_since: String,
    /// Who started the turn that asks, and with what.
    pub asked_by: AskedBy,
}

/// Whoever answers an approval sees what it is for: the account and, when
/// one was used, the personal API key (id, label, prefix — never the key)
/// that started the turn, and the start of the message it sent. Shown only
/// to the session's owner and admins, who may read the session anyway.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AskedBy {
    pub username: String,
    pub key: Option<AskingKey>,
    /// The turn's message: its first [`AskedBy::MESSAGE_CHARS`] characters,
    /// then `…` when there was more.
    pub message: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AskingKey {
    pub id: String,
    pub label: String,
    pub prefix: String,
}

impl AskedBy {
    pub const MESSAGE_CHARS: usize = 300;

    pub fn new(user: &User, key: Option<&crate::store::users::ApiKey>, message: &str) -> Self {
        AskedBy {
            username: user.username.clone(),
            key: key.map(|k| AskingKey {
                id: k.id.clone(),
                label: k.label.clone(),
                prefix: k.prefix.clone(),
            }),
            message: crate::output::clip(message, Self::MESSAGE_CHARS),
        }
    }
}

pub struct ChannelApprover {
    pub(super) registry: std::sync::Arc<PendingApprovals>,
    pub(super) owner_id: String,
    pub(super) timeout: std::time::Duration,
    pub(super) asked_by: AskedBy,
}

impl Approver for ChannelApprover {
    fn decide(&self, req: ApprovalRequest) -> BoxFuture<Decision> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let session = req.session_id.clone();
        {
            let mut map = self
                .registry
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            map.insert(
                session.clone(),
                Pending {
                    owner_id: self.owner_id.clone(),
                    since: crate::store::now_rfc3339(),
                    request: req,
                    asked_by: self.asked_by.clone(),
                    tx,
                },
            );
        }
        let registry = self.registry.clone();
        let timeout = self.timeout;
        // In a fleet, the request goes into the inbox too (any replica may
        // answer it) for as long as it waits here: now, before the caller
        // announces it. Not shared, it can still be answered here.
        let view = registry.fleet.get().and_then(|_| {
            let map = registry.inner.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&session).map(|p| PendingView {
                request: p.request.clone(),
                owner_id: p.owner_id.clone(),
                waiting_since: p.since.clone(),
                asked_by: p.asked_by.clone(),
            })
        });
        if let Some(view) = view {
            if let Err(e) = crate::store::pg::off_runtime(|| registry.put_in_inbox(&session, &view))
            {
                tracing::warn!("approvals inbox: {}", e.message);
            }
        }
        Box::pin(async move {
            let d = match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(d)) => d,
                _ => Decision {
                    choice: ApprovalChoice::Deny,
                    decided_by: "timeout".into(),
                    stop_run: false,
                },
            };
            registry
                .inner
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&session);
            if registry.fleet.get().is_some() {
                let _ =
                    tokio::task::spawn_blocking(move || registry.take_out_of_inbox(&session)).await;
            }
            d
        })
    }
}
