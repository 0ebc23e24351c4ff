//! `hermes-operator user ...`: accounts in users.db. Every change is an
//! audit event carrying the acting OS user.

mod add;
mod delete;
mod enable;
mod key;
mod link;
mod list;
mod passwd;
mod role;
mod show;
mod token;
mod totp;
mod unlock;

use crate::cli::Ctx;
use crate::store::users::User;

#[derive(Debug, clap::Subcommand)]
pub enum UserCmd {
    /// Create an account (password from a hidden prompt, or --password-stdin)
    Add(add::Args),
    /// List accounts
    List,
    /// Show one account (its `id` is what operator sessions carry as user_id)
    Show(show::Args),
    /// Change a password (revokes the user's tokens)
    Passwd(passwd::Args),
    /// Change a role (revokes the user's tokens)
    Role(role::Args),
    /// Disable an account (revokes its tokens)
    Disable(enable::Args),
    /// Enable a disabled account
    Enable(enable::Args),
    /// Delete an account (asks first; --yes for scripts)
    Delete(delete::Args),
    /// Print an access token (JWT) for scripts; needs the JWT secret
    Token(token::Args),
    /// Clear the throttling of logins for a username (failed attempts from every address)
    Unlock(unlock::Args),
    /// Two-factor login (TOTP) for an account
    #[command(subcommand)]
    Totp(totp::TotpCmd),
    /// Personal API keys (OpenAI-compatible clients, scripts)
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// Let a single sign-on user (the provider's subject) log in as this existing account
    Link(link::LinkArgs),
    /// End an account's single sign-on link (its SSO logins end too)
    Unlink(link::UnlinkArgs),
}

pub fn run(ctx: &Ctx, cmd: UserCmd) -> crate::Result<()> {
    match cmd {
        UserCmd::Add(a) => add::run(ctx, a),
        UserCmd::List => list::run(ctx),
        UserCmd::Show(a) => show::run(ctx, a),
        UserCmd::Passwd(a) => passwd::run(ctx, a),
        UserCmd::Role(a) => role::run(ctx, a),
        UserCmd::Disable(a) => enable::run(ctx, a, true),
        UserCmd::Enable(a) => enable::run(ctx, a, false),
        UserCmd::Delete(a) => delete::run(ctx, a),
        UserCmd::Token(a) => token::run(ctx, a),
        UserCmd::Unlock(a) => unlock::run(ctx, a),
        UserCmd::Totp(c) => totp::run(ctx, c),
        UserCmd::Key(c) => key::run(ctx, c),
        UserCmd::Link(a) => link::link(ctx, a),
        UserCmd::Unlink(a) => link::unlink(ctx, a),
    }
}

/// Shared by `show` and `audit user`: JSON for scripts, a two-column table for people.
pub(crate) fn print_user(ctx: &Ctx, u: &User) -> crate::Result<()> {
    if ctx.out.json {
        return ctx.out.json(u);
    }
    let mut t = ctx.out.table(&["field", "value"]);
    t.add_row(vec!["id".to_string(), u.id.clone()]);
    t.add_row(vec!["username".to_string(), u.username.clone()]);
    t.add_row(vec!["role".to_string(), u.role.to_string()]);
    t.add_row(vec!["disabled".to_string(), u.disabled.to_string()]);
    t.add_row(vec![
        "token_version".to_string(),
        u.token_version.to_string(),
    ]);
    t.add_row(vec!["created_at".to_string(), u.created_at.clone()]);
    t.add_row(vec!["updated_at".to_string(), u.updated_at.clone()]);
    t.add_row(vec![
        "password_changed_at".to_string(),
        u.password_changed_at.clone(),
    ]);
    t.add_row(vec![
        "last_login_at".to_string(),
        u.last_login_at.clone().unwrap_or_else(|| "never".into()),
    ]);
    ctx.out.print_table(&t)
}
