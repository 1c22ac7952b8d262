#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    appauth::cli::main()
}
