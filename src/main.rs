use std::process::ExitCode;

use clap::Parser;

use cidgate::cli::{self, Cli, Command, Exit};
use cidgate::telemetry;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // One-shot commands stay quiet unless something is wrong.
    let level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    telemetry::init(cli.log_format, level);
    match cli::run(cli.command).await {
        Ok(Exit::Success) => ExitCode::SUCCESS,
        Ok(Exit::Partial) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
