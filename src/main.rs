fn main() {
    std::process::exit(hermes_operator::cli::main());
}
