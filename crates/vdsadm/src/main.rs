//! `vdsadm`: the administrator's command-line tool for the vds iSCSI hardware provider, in the
//! spirit of DiskRAID (object keywords `tportal`, `tpgroup`, indexes in enumeration order) and of
//! tgtadm/iscsiadm (one command per invocation, scriptable output).
//!
//! The flow of every run: clap parses the raw command line ([`cli`]); [`args::validate`] checks it
//! in one place; the command runs against the simulator ([`sim`], `--sim`) or the store and real
//! arrays ([`store`]); its result is printed as a table or as one JSON document ([`output`]); a
//! failure becomes one line on stderr (or a JSON error on stdout) and a documented exit status
//! ([`error`]). The VDS semantics (what a corrupt cache or a failed subsystem answers) come from the
//! model in `vds-model`; queries ([`view`]) only walk it.

mod args;
mod cli;
mod error;
mod output;
mod progress;
mod sim;
mod store;
mod view;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use serde::Serialize;
use vds_model::Hresult;

use crate::args::{Command, Invocation};
use crate::cli::Cli;
use crate::error::{CliError, CliResult, ExitClass};

/// What a successful command prints on stdout.
pub enum Printed {
    /// `--json`: one document, serialized (fields in declaration order).
    Json(String),
    /// A table or text for people.
    Text(String),
    /// Bytes as they are (completion scripts, the manual page).
    Raw(Vec<u8>),
}

/// The document for `value`: JSON with `--json`, else `text`.
pub fn print_doc<T: Serialize>(json: bool, value: &T, text: String) -> CliResult<Printed> {
    if json {
        serde_json::to_string_pretty(value)
            .map(Printed::Json)
            .map_err(|e| {
                CliError::with_cause(Hresult::E_UNEXPECTED, "output", format!("JSON: {e}"))
            })
    } else {
        Ok(Printed::Text(text))
    }
}

fn init_tracing(verbose: u8) {
    if verbose == 0 {
        return;
    }
    let level = match verbose {
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VDSADM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // A second initialization cannot happen here; if it did, logging would simply stay as it is.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// The manual page: clap_mangen's rendering plus an EXIT STATUS section from the one table.
fn man_page() -> CliResult<Vec<u8>> {
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
    Ok(buf)
}

fn run(inv: &Invocation) -> CliResult<Printed> {
    let json = inv.globals.json;
    match &inv.command {
        Command::Completions(shell) => {
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "vdsadm", &mut buf);
            Ok(Printed::Raw(buf))
        }
        Command::Man => man_page().map(Printed::Raw),
        command if inv.globals.sim => sim::Sim::start()?.run(command, json),
        command => store::run(&inv.globals, command),
    }
}

/// Writes to stdout; a closed pipe (`vdsadm list … | head -1`) is not an error.
fn write_stdout(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vdsadm: stdout: {e}");
            ExitCode::from(ExitClass::Other.code())
        }
    }
}

fn json_line(mut s: String) -> Vec<u8> {
    s.push('\n');
    s.into_bytes()
}

fn fail(json: bool, e: &CliError) -> ExitCode {
    let code = ExitCode::from(e.class().code());
    if json {
        write_stdout(&json_line(e.to_json()));
    } else {
        eprintln!("vdsadm: {e}");
    }
    code
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind as K;
            let informational = matches!(e.kind(), K::DisplayHelp | K::DisplayVersion)
                || e.kind() == K::DisplayHelpOnMissingArgumentOrSubcommand;
            if !informational && std::env::args().any(|a| a == "--json") {
                let cause = e
                    .kind()
                    .as_str()
                    .unwrap_or("invalid command line")
                    .to_string();
                let err = CliError::usage("command line", cause);
                return fail(true, &err);
            }
            e.exit();
        }
    };
    let json = cli.json;
    let inv = match args::validate(cli) {
        Ok(inv) => inv,
        Err(e) => return fail(json, &e),
    };
    init_tracing(inv.globals.verbose);
    match run(&inv) {
        Ok(Printed::Json(s)) => write_stdout(&json_line(s)),
        Ok(Printed::Text(t)) => write_stdout(t.as_bytes()),
        Ok(Printed::Raw(b)) => write_stdout(&b),
        Err(e) => fail(json, &e),
    }
}
