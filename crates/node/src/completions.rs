//! Shell completions and the man page, generated from the command line's clap definitions so
//! that they never drift from it.

use crate::Cli;
use clap::CommandFactory;

/// Writes the completion script for `shell` to stdout.
pub(crate) fn completions(shell: clap_complete::Shell) {
    clap_complete::generate(shell, &mut Cli::command(), "ferry", &mut std::io::stdout());
}

/// Writes the `ferry(1)` man page (roff) to stdout.
pub(crate) fn man_page() -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())
}
