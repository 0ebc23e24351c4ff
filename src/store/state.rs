//! state.db: Hermes' session store (SPEC §5, HERMES_NOTES). Placeholder
//! until the state layer lands.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub struct StateDb {
    pub path: PathBuf,
}

impl StateDb {
    pub fn open_readonly(path: &Path) -> Result<Self> {
        Err(Error::internal(format!("{}: state.db layer not built yet", path.display())))
    }
    pub fn open_readwrite(path: &Path) -> Result<Self> {
        Err(Error::internal(format!("{}: state.db layer not built yet", path.display())))
    }
}
