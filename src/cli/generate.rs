//! Shell completions and man pages generated from the clap definitions: `cidgate
//! completions <shell>` and `cidgate man [--out-dir DIR]`, which the Debian package's build
//! (deploy/deb/build.sh) runs, so what it ships cannot drift from the command line. They are
//! parsed apart from `Cli` (main.rs asks `requested` first), so that neither the help, the
//! completions nor the man pages offer them: clap_complete lists even hidden subcommands.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// The packagers' commands.
#[derive(Debug, clap::Parser)]
#[command(
    name = "cidgate",
    about = "Generate shell completions and man pages (for packagers)"
)]
pub enum Generate {
    /// Print a shell completion script
    Completions(CompletionsArgs),
    /// Print the man page, or write every page to a directory
    Man(ManArgs),
}

impl Generate {
    /// Whether the command line asks for one of these (`cidgate completions …`, `cidgate man …`).
    pub fn requested(args: &[OsString]) -> bool {
        matches!(
            args.get(1).and_then(|a| a.to_str()),
            Some("completions" | "man")
        )
    }

    pub fn run(self) -> anyhow::Result<()> {
        match self {
            Self::Completions(args) => completions(args),
            Self::Man(args) => man(args),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to print the completion script for
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write every page (cidgate.1, cidgate-tenant.1, cidgate-tenant-create.1, …) into this
    /// directory instead of printing cidgate.1
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    // Into a buffer first: clap_complete panics on a write error (e.g. a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "cidgate", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("writing the completion script")
}

pub fn man(args: ManArgs) -> anyhow::Result<()> {
    match args.out_dir {
        Some(dir) => clap_mangen::generate_to(Cli::command(), &dir)
            .with_context(|| format!("writing man pages to {}", dir.display())),
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .and_then(|()| out.flush())
                .context("writing the man page")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visible_subcommands() -> Vec<String> {
        Cli::command()
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
            .map(|c| c.get_name().to_owned())
            .collect()
    }

    #[test]
    fn every_command_gets_a_page_and_the_generators_none() {
        let dir = tempfile::tempdir().unwrap();
        man(ManArgs {
            out_dir: Some(dir.path().to_owned()),
        })
        .unwrap();
        let page = |name: &str| dir.path().join(format!("{name}.1"));
        assert!(page("cidgate").exists());
        for name in visible_subcommands() {
            assert!(page(&format!("cidgate-{name}")).exists(), "{name}");
        }
        assert!(page("cidgate-tenant-create").exists());
        assert!(!page("cidgate-man").exists());
        assert!(!page("cidgate-completions").exists());
        let top = std::fs::read_to_string(page("cidgate")).unwrap();
        assert!(top.starts_with(".ie \\n(.g .ds Aq") || top.contains(".TH cidgate 1"));
        assert!(top.contains("serve"), "{top}");
    }

    #[test]
    fn the_completion_scripts_offer_every_visible_command() {
        assert!(visible_subcommands().contains(&"service-user".to_owned()));
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "cidgate", &mut script);
            let script = String::from_utf8(script).unwrap();
            for name in visible_subcommands() {
                assert!(script.contains(&name), "{shell}: {name}");
            }
            assert!(
                !script.contains("completions"),
                "{shell} offers a hidden command"
            );
        }
    }
}
