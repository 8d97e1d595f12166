use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match sagas::cli::main(std::env::args_os()).await {
        Ok(()) => ExitCode::SUCCESS,
        // A refused command line is one line, whatever RUST_BACKTRACE says,
        // and exits 2 as clap's own usage errors do.
        Err(error) if error.is::<sagas::cli::Refused>() => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("Error: {error:?}");
            ExitCode::FAILURE
        }
    }
}
