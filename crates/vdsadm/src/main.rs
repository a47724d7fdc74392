//! `vdsadm`: the administrator's command-line tool for the vds iSCSI hardware providers, in the
//! spirit of DiskRAID (object keywords `tportal`, `tpgroup`, indexes in enumeration order, verbs
//! `online`, `create`, `add`, …) and of tgtadm/iscsiadm (one command per invocation, scriptable
//! output).
//!
//! The flow of every run: clap parses the raw command line ([`cli`]); [`args::validate`] checks it
//! in one place; the command ([`commands`], one file each) makes one call of the service
//! (`vds-service`), which owns every VDS rule, the store and the providers; its answer, a document
//! of `vds-api`, is printed as a table or as one JSON document ([`output`]); a failure becomes one
//! line on stderr (or a JSON error on stdout) and a documented exit status ([`error`]). The
//! process starts in [`start`], not in Rust's runtime entry.
// On Linux with glibc, vdsadm has its own entry point; the unit tests' build keeps the test
// harness's.
#![cfg_attr(all(not(test), target_os = "linux", target_env = "gnu"), no_main)]

mod args;
mod cli;
mod commands;
mod error;
mod output;
mod progress;
mod remote;
mod start;
mod terminal;

use std::io::Write;

use crate::commands::{Body, Document};
use crate::error::{CliError, ExitClass};

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
    // No colours: what the logs quote from arrays is escaped on its way out, and colour codes would
    // be escaped with it.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| terminal::EscapingStderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

/// Writes to stdout; a closed pipe (`vdsadm list … | head -1`) is not an error.
fn write_stdout(bytes: &[u8]) -> bool {
    let mut out = std::io::stdout().lock();
    stdout_written(out.write_all(bytes).and_then(|()| out.flush()))
}

/// `doc` as one JSON line on stdout, written as it is serialized (in 64 KiB writes).
fn write_doc(doc: &dyn Document) -> bool {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    stdout_written(
        doc.write_json(&mut out)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush()),
    )
}

/// Whether writing to stdout went well: a closed pipe counts as done, another error is said.
fn stdout_written(result: std::io::Result<()>) -> bool {
    match result {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => true,
        Err(e) => {
            say(&format!("stdout: {e}"));
            false
        }
    }
}

fn json_line(mut s: String) -> Vec<u8> {
    s.push('\n');
    s.into_bytes()
}

/// One line on stderr, every hazard escaped (the line cannot break, nor act on the terminal).
pub(crate) fn say(line: &str) {
    write_stderr(format!("vdsadm: {}\n", terminal::escape(line)).as_bytes());
}

/// Writes to stderr. A stderr that is closed or whose reader is gone cannot be told anything
/// more, so that is not a failure of the command (and never a panic, as `eprintln!`'s is).
fn write_stderr(bytes: &[u8]) {
    let _ = std::io::stderr().lock().write_all(bytes);
}

fn fail(json: bool, e: &CliError) -> u8 {
    let code = e.class().code();
    if json {
        write_stdout(&json_line(e.to_json()));
    } else {
        say(&e.to_string());
    }
    code
}

/// The C `main`: the process starts here (see [`start`]). `std::env::args` still works without
/// Rust's entry because std reads the arguments from glibc's `.init_array` call, which only
/// glibc makes: other targets keep Rust's entry.
#[cfg(all(not(test), target_os = "linux", target_env = "gnu"))]
#[unsafe(no_mangle)]
extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    start::run(vdsadm)
}

/// Rust's entry, where vdsadm does not have its own (and the unit tests' build, whose harness
/// replaces it).
#[cfg(not(all(not(test), target_os = "linux", target_env = "gnu")))]
fn main() {
    start::run(vdsadm)
}

/// vdsadm: the process's exit status.
fn vdsadm() -> u8 {
    let cli = match cli::parse_from(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind as K;
            let json = std::env::args().any(|a| a == "--json" || a.starts_with("--json="));
            // With --json, every failure is one JSON document on stdout, a missing subcommand
            // included; only --help and --version print their text.
            let help = matches!(e.kind(), K::DisplayHelp | K::DisplayVersion);
            if json && !help {
                let cause = match e.kind() {
                    K::DisplayHelpOnMissingArgumentOrSubcommand => {
                        "a subcommand is missing (see `vdsadm --help`)".to_string()
                    }
                    kind => kind.as_str().unwrap_or("invalid command line").to_string(),
                };
                let err = CliError::usage("command line", cause);
                return fail(true, &err);
            }
            // clap's messages quote what was typed: escaped like every other output.
            let text = e.render().to_string();
            let text = terminal::escape_with(&text, true);
            if e.use_stderr() {
                write_stderr(text.as_bytes());
            } else if !write_stdout(text.as_bytes()) {
                return ExitClass::Other.code();
            }
            return u8::try_from(e.exit_code()).unwrap_or(2);
        }
    };
    let json = cli.common.json;
    let inv = match args::validate(cli) {
        Ok(inv) => inv,
        Err(e) => return fail(json, &e),
    };
    init_tracing(inv.globals.verbose);
    // Warnings go to stderr, with --json too: stdout keeps its one document.
    for w in &inv.warnings {
        say(w);
    }
    match commands::run(&inv) {
        Ok(printed) => {
            let written = match printed.body {
                Body::Json(s) => write_stdout(&json_line(s)),
                Body::Doc(d) => write_doc(&*d),
                Body::Text(t) => write_stdout(terminal::escape_with(&t, true).as_bytes()),
                Body::Raw(b) => write_stdout(&b),
            };
            for w in &printed.warnings {
                say(w);
            }
            if !written {
                return ExitClass::Other.code();
            }
            printed.exit.code()
        }
        Err(e) => fail(json, &e),
    }
}
