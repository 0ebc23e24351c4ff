//! Regenerate `completions/` and `man/` from the clap definitions:
//!
//!   cargo run --example gen_docs

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["completions", "man"] {
        let d = root.join(dir);
        // Remove stale pages of commands that no longer exist.
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        std::fs::create_dir_all(&d).expect("create output dir");
    }
    for (rel, bytes) in hermes_operator::cli::docs::render() {
        std::fs::write(root.join(&rel), bytes).expect("write generated file");
        println!("wrote {rel}");
    }
}
