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

impl From<ApprovePolicyArg> for ApprovePolicy {
    fn from(p: ApprovePolicyArg) -> ApprovePolicy {
        match p {
            ApprovePolicyArg::Prompt => ApprovePolicy::Prompt,
            ApprovePolicyArg::Deny => ApprovePolicy::Deny,
            ApprovePolicyArg::Once => ApprovePolicy::Once,
            ApprovePolicyArg::Session => ApprovePolicy::Session,
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
