//! `user key create|list|revoke`: personal API keys for OpenAI-compatible
//! clients and scripts (`ops::keys`).

use crate::cli::values::{KeyApprovalsArg, KeyScopeArg};
use crate::cli::Ctx;
use crate::ops::keys::{self, KeyOptions};
use crate::store::users::ApiKey;

#[derive(Debug, clap::Subcommand)]
pub enum KeyCmd {
    /// Make a key for an account; it is printed once and stored only as a hash
    Create(CreateArgs),
    /// List keys (of one account, or all): id, label, prefix, scope, use, expiry
    List(ListArgs),
    /// Revoke a key at once
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Username of the key's owner
    #[arg(add = crate::cli::completions::usernames())]
    pub name: String,
    /// What the key is for (shown in lists)
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub label: String,
    /// Expire after this long: e.g. 90d, 12w, 36h [default: never]
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
    /// What the key may do within its owner's role [default: chat, or read for roles that cannot chat]
    #[arg(long, value_enum)]
    pub scope: Option<KeyScopeArg>,
    /// Toolsets its turns may use, within agent.enabled_toolsets: e.g. web,file [default: all of those]
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub toolsets: Option<Vec<String>>,
    /// How its turns answer dangerous-command approvals [default: deny]
    #[arg(long, value_enum)]
    pub approvals: Option<KeyApprovalsArg>,
    /// At most this many requests per minute [default: unlimited]
    #[arg(long, value_name = "N")]
    pub rpm: Option<u32>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this account's keys
    pub name: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The key's id (key_…), from `user key list`
    pub id: String,
}

pub fn run(ctx: &Ctx, cmd: KeyCmd) -> crate::Result<()> {
    match cmd {
        KeyCmd::Create(a) => {
            let expires_in = match &a.expires {
                Some(s) => keys::parse_expires(s)?,
                None => None,
            };
            let o = KeyOptions {
                label: a.label,
                expires_in,
                scope: a.scope.map(Into::into),
                toolsets: a.toolsets,
                approvals: a.approvals.map(Into::into),
                rpm: a.rpm,
            };
            let k = keys::create(&ctx.app, &a.name, &o)?;
            if ctx.out.json {
                return ctx.out.json(&k);
            }
            ctx.out.line(&k.key)?;
            ctx.out.info(format!(
                "{} for {}: scope {}, approvals {}; shown once, store it now (only its hash is kept)",
                k.info.id,
                k.info.username,
                k.info.scope.as_str(),
                k.info.approvals.as_str()
            ));
            Ok(())
        }
        KeyCmd::List(a) => {
            let list = keys::list(&ctx.app, a.name.as_deref(), None)?;
            if ctx.out.json {
                return ctx.out.json(&list);
            }
            let mut t = ctx.out.table(&[
                "id",
                "user",
                "label",
                "prefix",
                "scope",
                "toolsets",
                "created",
                "last used",
                "expires",
                "status",
            ]);
            for k in &list {
                t.add_row(row(k));
            }
            ctx.out.print_table(&t)?;
            ctx.out.info(format!("{} key(s)", list.len()));
            Ok(())
        }
        KeyCmd::Revoke(a) => {
            let (k, changed) = keys::revoke(&ctx.app, &a.id, None)?;
            if ctx.out.json {
                return ctx
                    .out
                    .json(&serde_json::json!({"key": k, "changed": changed}));
            }
            ctx.out.line(if changed {
                format!("{} ({}, {}) revoked", k.id, k.prefix, k.username)
            } else {
                format!("{} was already revoked; nothing changed", k.id)
            })
        }
    }
}

fn day(s: &str) -> String {
    s.get(..16).unwrap_or(s).replace('T', " ")
}

fn row(k: &ApiKey) -> Vec<String> {
    let now = chrono::Utc::now().timestamp();
    let status = if k.revoked_at.is_some() {
        "revoked"
    } else if k.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    };
    vec![
        k.id.clone(),
        k.username.clone(),
        k.label.clone(),
        format!("{}…", k.prefix),
        k.scope.as_str().to_string(),
        k.toolsets
            .as_ref()
            .map(|t| t.join(","))
            .unwrap_or_else(|| "(all)".into()),
        day(&k.created_at),
        k.last_used_at
            .as_deref()
            .map(day)
            .unwrap_or_else(|| "never".into()),
        k.expires_at
            .and_then(|e| chrono::DateTime::from_timestamp(e, 0))
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "never".into()),
        status.to_string(),
    ]
}
