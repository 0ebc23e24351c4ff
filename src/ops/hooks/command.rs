//! The `hook` command line Hermes runs, and how to tell it is ours.

use super::*;

/// The command Hermes runs: `<this binary> --hermes-home <HOME> hook`, both
/// paths absolute.
pub fn hook_command(home: &Home) -> Result<String> {
    let exe = std::env::current_exe().map_err(|e| {
        Error::internal(format!("cannot find this program's path: {e}")).with_source(e)
    })?;
    let exe = fs::canonicalize(&exe).unwrap_or(exe);
    let root = absolute(&home.root)?;
    Ok(hook_command_for(&exe, &root))
}

pub fn hook_command_for(exe: &Path, home_root: &Path) -> String {
    format!(
        "{} --hermes-home {} hook",
        sh_quote(&exe.to_string_lossy()),
        sh_quote(&home_root.to_string_lossy())
    )
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if let Ok(c) = fs::canonicalize(p) {
        return Ok(c);
    }
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir()?.join(p))
}

/// A hook command that runs some hermes-operator's `hook` handler (any
/// path, any home): the entries install replaces and uninstall removes.
pub fn is_managed_command(cmd: &str) -> bool {
    let Some(argv) = sh_split(cmd) else {
        return false;
    };
    argv.len() >= 2
        && Path::new(&argv[0]).file_name().and_then(|n| n.to_str()) == Some("hermes-operator")
        && argv.last().map(String::as_str) == Some("hook")
}

/// The executable a hook command runs (its first word).
pub fn command_program(cmd: &str) -> Option<PathBuf> {
    sh_split(cmd)?.into_iter().next().map(PathBuf::from)
}

pub(super) fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
