//! The command line's spelling of domain values. The domain and store
//! types (`Role`, `ApprovePolicy`, `ExportFormat`) know nothing of clap; these
//! mirrors carry the `ValueEnum` derive (so help, completions and man pages
//! list the values) and convert into them.

use crate::ops::chat::ApprovePolicy;
use crate::ops::sessions::ExportFormat;
use crate::store::users::Role;

/// An account role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    Admin,
    Auditor,
    User,
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Auditor => Role::Auditor,
            RoleArg::User => Role::User,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

/// How `chat` answers approval requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ApprovePolicyArg {
    /// Ask on the terminal; deny when there is none
    Prompt,
    /// Deny every request
    Deny,
    /// Approve each request once
    Once,
    /// Approve the command pattern for the rest of the session
    Session,
}

impl ApprovePolicyArg {
    /// The domain's fixed policy; `None` for `prompt` (the CLI asks a person).
    pub fn policy(self) -> Option<ApprovePolicy> {
        match self {
            ApprovePolicyArg::Prompt => None,
            ApprovePolicyArg::Deny => Some(ApprovePolicy::Deny),
            ApprovePolicyArg::Once => Some(ApprovePolicy::Once),
            ApprovePolicyArg::Session => Some(ApprovePolicy::Session),
        }
    }
}

/// `session export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormatArg {
    Json,
    Md,
}

impl From<ExportFormatArg> for ExportFormat {
    fn from(f: ExportFormatArg) -> ExportFormat {
        match f {
            ExportFormatArg::Json => ExportFormat::Json,
            ExportFormatArg::Md => ExportFormat::Md,
        }
    }
}

/// `user key create --scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyScopeArg {
    /// Chat and read (within the owner's role)
    Chat,
    /// Read-only requests
    Read,
}

impl From<KeyScopeArg> for crate::store::users::KeyScope {
    fn from(s: KeyScopeArg) -> Self {
        match s {
            KeyScopeArg::Chat => Self::Chat,
            KeyScopeArg::Read => Self::Read,
        }
    }
}

/// `user key create --approvals`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyApprovalsArg {
    /// Deny dangerous commands at once
    Deny,
    /// Park them for the owner to answer (approval API, dashboard) until Hermes' timeout
    Wait,
}

impl From<KeyApprovalsArg> for crate::store::users::KeyApprovals {
    fn from(a: KeyApprovalsArg) -> Self {
        match a {
            KeyApprovalsArg::Deny => Self::Deny,
            KeyApprovalsArg::Wait => Self::Wait,
        }
    }
}
