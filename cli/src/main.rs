fn main() -> std::process::ExitCode {
    backwork_cli::main()
}
