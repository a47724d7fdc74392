//! `vdsadm completions SHELL` and `vdsadm man`: generated from the command line's definition.

use clap::CommandFactory;
use vds_model::Hresult;

use super::{Body, Printed};
use crate::cli::Cli;
use crate::error::{self, CliError, CliResult};

/// `completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> CliResult<Printed> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "vdsadm", &mut buf);
    Ok(Printed::ok(Body::Raw(buf)))
}

/// `man`: clap_mangen's rendering plus an EXIT STATUS section from the one table.
pub fn man() -> CliResult<Printed> {
    let mut buf = Vec::new();
    let io_err =
        |e: std::io::Error| CliError::with_cause(Hresult::from_io_error(&e), "man", e.to_string());
    clap_mangen::Man::new(Cli::command())
        .render(&mut buf)
        .map_err(io_err)?;
    buf.extend_from_slice(b".SH \"EXIT STATUS\"\n");
    for (_, code, words) in error::EXIT_CODES {
        buf.extend_from_slice(format!(".TP\n\\fB{code}\\fR\n{words}\n").as_bytes());
    }
    Ok(Printed::ok(Body::Raw(buf)))
}
