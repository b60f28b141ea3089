//! The `grant` binary: everything lives in the library, so tests run the
//! same code.

fn main() -> std::process::ExitCode {
    let code = grant_cli::run(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    std::process::ExitCode::from(code as u8)
}
