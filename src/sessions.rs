//! Operator sessions as library calls (placeholder).

use crate::error::{Error, Result};

/// Reject ids that cannot be session ids before they reach SQL or a terminal.
pub fn validate_session_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(Error::not_found(format!(
            "no session {:?}: not a valid session id",
            crate::output::clip(&crate::output::sanitize(id), 60)
        )))
    }
}
