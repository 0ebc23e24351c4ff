fn main() -> std::process::ExitCode {
    // Every exit code `Kind::exit_code` gives fits in a byte (README, "Exit codes").
    std::process::ExitCode::from(u8::try_from(hermes_operator::cli::main()).unwrap_or(1))
}
