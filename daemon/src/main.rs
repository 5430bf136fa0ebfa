//! The `procedurewriter` binary: everything lives in the library; see `cli.rs`.

fn main() -> std::process::ExitCode {
    procedurewriter::cli::main()
}
