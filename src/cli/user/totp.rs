//! `user totp enable|confirm|disable NAME`: two-factor login for an account.

use crate::cli::Ctx;
use serde_json::json;

#[derive(Debug, clap::Subcommand)]
pub enum TotpCmd {
    /// Start enrolling an authenticator: prints the otpauth URI (and a QR
    /// code on a terminal) and 10 one-time recovery codes, once. Logins need
    /// a code only after `user totp confirm`
    Enable(NameArg),
    /// Confirm the enrolment with the authenticator's current 6-digit code
    Confirm(ConfirmArgs),
    /// Remove two-factor login (and its recovery codes) from an account
    Disable(NameArg),
}

#[derive(Debug, clap::Args)]
pub struct NameArg {
    /// Username
    #[arg(add = crate::cli::completions::usernames())]
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct ConfirmArgs {
    /// Username
    #[arg(add = crate::cli::completions::usernames())]
    pub name: String,
    /// The authenticator's current code (6 digits)
    pub code: String,
}

pub fn run(ctx: &Ctx, cmd: TotpCmd) -> crate::Result<()> {
    use crate::ops::totp;
    match cmd {
        TotpCmd::Enable(a) => {
            let e = totp::enable(&ctx.app, &a.name)?;
            if ctx.out.json {
                return ctx.out.json(&e);
            }
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                if let Ok(qr) = qrcode::QrCode::new(e.uri.as_bytes()) {
                    let img = qr
                        .render::<qrcode::render::unicode::Dense1x2>()
                        .quiet_zone(true)
                        .build();
                    ctx.out.line(img)?;
                }
            }
            ctx.out.line(format!("otpauth URI: {}", e.uri))?;
            ctx.out.line(format!("secret (base32): {}", e.secret))?;
            ctx.out
                .line("recovery codes (each works once; keep them offline):")?;
            for c in &e.recovery_codes {
                ctx.out.line(format!("  {c}"))?;
            }
            ctx.out.info(format!(
                "scan it into an authenticator, then: hermes-operator user totp confirm {} CODE",
                a.name
            ));
            Ok(())
        }
        TotpCmd::Confirm(a) => {
            if let Err(t) = totp::confirm(&ctx.app, &a.name, &a.code, "cli")? {
                return Err(crate::Error::busy(format!(
                    "too many wrong codes for {}; try again in {} s",
                    a.name, t.retry_after_secs
                ))
                .hint(format!(
                    "`hermes-operator user unlock {}` clears the count",
                    a.name
                )));
            }
            if ctx.out.json {
                return ctx
                    .out
                    .json(&json!({"username": a.name, "totp": "enabled"}));
            }
            ctx.out.line(format!(
                "{}: two-factor login is on; logins need a code; earlier tokens are revoked",
                a.name
            ))
        }
        TotpCmd::Disable(a) => {
            let removed = totp::disable(&ctx.app, &a.name)?;
            if ctx.out.json {
                return ctx
                    .out
                    .json(&json!({"username": a.name, "totp": "disabled", "changed": removed}));
            }
            ctx.out.line(if removed {
                format!("{}: two-factor login removed", a.name)
            } else {
                format!("{}: had no two-factor login; nothing changed", a.name)
            })
        }
    }
}
