use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};

use cidgate::cli::generate::Generate;
use cidgate::cli::{self, Cli, Command, Exit};
use cidgate::{config, telemetry};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `cidgate --version`: the version and the commit it was built from (build.rs). Set here,
/// not on the library's `Cli`, so that a new commit relinks only this binary.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("CIDGATE_BUILD_COMMIT"),
    ")"
);

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if Generate::requested(&args) {
        return generate(args);
    }
    // The file fills in environment variables, so it is read before any thread starts
    // and before the command line (whose defaults come from the environment) is parsed.
    if let Some(path) = config::file::requested(&args)
        && let Err(e) = config::file::load(&path)
    {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let parsed = Cli::command()
        .version(VERSION)
        .try_get_matches_from(args)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        // Usage errors exit 1 like every other error: 2 means "some rows were rejected"
        // to scripts that run `cidgate import` (clap's own code for them is 2).
        Err(e) if e.use_stderr() => {
            eprint!("{e}");
            return ExitCode::FAILURE;
        }
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

/// `cidgate completions` / `cidgate man`: no settings, no runtime, no logging.
fn generate(args: Vec<OsString>) -> ExitCode {
    let outcome = match Generate::try_parse_from(args) {
        Ok(generate) => generate.run(),
        Err(e) if e.use_stderr() => {
            eprint!("{e}");
            return ExitCode::FAILURE;
        }
        Err(e) => e.exit(),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    // One-shot commands stay quiet unless something is wrong.
    let level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    telemetry::init(cli.log_format, level);
    let outcome = cli::run(cli.command).await;
    // The last log lines come before the command's own last word.
    telemetry::flush();
    match outcome {
        Ok(Exit::Success) => ExitCode::SUCCESS,
        Ok(Exit::Partial) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
