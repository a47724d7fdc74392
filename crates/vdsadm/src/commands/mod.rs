//! The commands: one file each. A command is parse → one service call → print: it turns its
//! validated arguments into a call of the service (`vds-service`) and the answer into a
//! [`Printed`]; it holds no VDS logic of its own.

mod change;
mod completions;
mod detail;
mod discover;
mod list;
mod provider;
mod reenumerate;
mod refresh;
mod subsystem;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use vds_model::Hresult;
use vds_service::{Service, ServiceOptions};

use crate::args::{Command, Globals, Invocation};
use crate::error::{CliError, CliResult, ExitClass};
use crate::progress::Bar;
use crate::remote::Remote;

/// What a command prints on stdout, the lines it adds on stderr, and how the process exits.
pub struct Printed {
    /// The body.
    pub body: Body,
    /// Lines for stderr (without the `vdsadm: ` prefix), when the command did not do everything.
    pub warnings: Vec<String>,
    /// The exit class (success unless something was not done).
    pub exit: ExitClass,
}

/// The body of what a command prints.
pub enum Body {
    /// `--json`: one document, serialized (fields in declaration order).
    Json(String),
    /// `--json`: one document, serialized as it is written out (an operation's report: a fleet's
    /// is megabytes, never held as text).
    Doc(Box<dyn Document>),
    /// A table or text for people.
    Text(String),
    /// Bytes as they are (completion scripts, the manual page).
    Raw(Vec<u8>),
}

impl Printed {
    fn ok(body: Body) -> Printed {
        Printed {
            body,
            warnings: Vec::new(),
            exit: ExitClass::Ok,
        }
    }
}

/// A value written to stdout as JSON while it is serialized ([`Body::Doc`]).
pub trait Document {
    /// Writes the value as pretty JSON.
    fn write_json(&self, out: &mut dyn std::io::Write) -> serde_json::Result<()>;
}

impl<T: Serialize> Document for T {
    fn write_json(&self, out: &mut dyn std::io::Write) -> serde_json::Result<()> {
        serde_json::to_writer_pretty(out, self)
    }
}

/// An operation's report (refresh, reenumerate): streamed as JSON with `--json`, else its table
/// (built only then); the exit class and warnings from its failures.
pub(crate) fn print_report(json: bool, report: vds_api::OperationReport) -> Printed {
    let mut printed = with_failures(Printed::ok(Body::Raw(Vec::new())), &report.failures, json);
    printed.body = if json {
        Body::Doc(Box::new(report))
    } else {
        Body::Text(crate::output::operation_text(&report))
    };
    printed
}

/// The document for `value`: JSON with `--json`, else the text `text` makes (only then).
pub fn print_doc<T: Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce() -> String,
) -> CliResult<Printed> {
    if json {
        serde_json::to_string_pretty(value)
            .map(|s| Printed::ok(Body::Json(s)))
            .map_err(|e| {
                CliError::with_cause(Hresult::E_UNEXPECTED, "output", format!("JSON: {e}"))
            })
    } else {
        Ok(Printed::ok(Body::Text(text())))
    }
}

/// I/O events a one-thread runtime takes per poll: a command has a few connections open at once,
/// and tokio's default (1,024) is a 12 KiB buffer every command would touch at start-up.
pub const CLI_IO_EVENTS: usize = 64;

/// What every command needs: the global options, and the way to the service.
pub struct Ctx<'a> {
    /// The global options.
    pub globals: &'a Globals,
}

impl Ctx<'_> {
    fn json(&self) -> bool {
        self.globals.json
    }

    /// A runtime for the commands that talk to arrays: several threads when `parallel` (a refresh
    /// of many subsystems), one otherwise.
    fn runtime(&self, parallel: bool) -> CliResult<tokio::runtime::Runtime> {
        let mut b = if parallel {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            let n = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
            b.worker_threads(n);
            b
        } else {
            let mut b = tokio::runtime::Builder::new_current_thread();
            b.max_io_events_per_tick(CLI_IO_EVENTS);
            b
        };
        b.enable_all()
            .build()
            .map_err(|e| CliError::with_cause(Hresult::from_io_error(&e), "runtime", e.to_string()))
    }

    /// The service of a query: a query never makes a store, and needs a runtime only to make the
    /// simulator.
    fn query_service(&self) -> CliResult<Service> {
        if self.globals.sim {
            let rt = self.runtime(false)?;
            return self.service(&rt, false, None);
        }
        Ok(Service::open(ServiceOptions::new(self.root()))?)
    }

    /// The daemon serving the store, when one does (never with `--sim`): the command goes to it.
    fn remote(&self) -> CliResult<Option<Remote>> {
        if self.globals.sim {
            return Ok(None);
        }
        Remote::find(&self.root())
    }

    fn root(&self) -> PathBuf {
        self.globals
            .store
            .clone()
            .unwrap_or_else(vds_store::Store::default_root)
    }

    /// The service: over the store (`create`: made when missing; queries never make one), or over
    /// a throwaway store holding the simulator with `--sim`.
    fn service(
        &self,
        rt: &tokio::runtime::Runtime,
        create: bool,
        bar: Option<&Bar>,
    ) -> CliResult<Service> {
        if self.globals.sim {
            tracing::info!("simulator: a throwaway store with provider \"vds-sim\"");
            return Ok(rt.block_on(Service::simulator())?);
        }
        let root = self.root();
        tracing::debug!(store = %root.display(), "opening the store");
        let mut options = ServiceOptions::new(root);
        options.create = create;
        // One operation, then exit: hold no provider's whole picture.
        options.paged = true;
        if let Some(bar) = bar {
            let bar = bar.clone();
            options.progress = Some(Arc::new(move |done, total| bar.set(done, total)));
        }
        Ok(Service::open(options)?)
    }
}

/// Runs the validated command.
pub fn run(inv: &Invocation) -> CliResult<Printed> {
    let ctx = Ctx {
        globals: &inv.globals,
    };
    match &inv.command {
        Command::Completions(shell) => completions::completions(*shell),
        Command::Man(dir) => completions::man(dir.as_deref()),
        Command::Discover {
            portal,
            credentials,
        } => discover::run(&ctx, portal, credentials),
        Command::ListProviders => list::providers(&ctx),
        Command::ListSubsystems => list::subsystems(&ctx),
        Command::ListTportals(sel) => list::portals(&ctx, sel),
        Command::ListTargets(sel) => list::targets(&ctx, sel),
        Command::ListTpgroups(sel, iqn) => list::portal_groups(&ctx, sel, iqn),
        Command::DetailSubsystem(sel) => detail::subsystem(&ctx, sel),
        Command::DetailTportal(sel, portal) => detail::portal(&ctx, sel, portal),
        Command::DetailTarget(sel, iqn) => detail::target(&ctx, sel, iqn),
        Command::Refresh(sel) => refresh::run(&ctx, sel.as_ref()),
        Command::Reenumerate => reenumerate::run(&ctx),
        Command::SubsystemAdd {
            name,
            portals,
            credentials,
            no_refresh,
        } => subsystem::add(&ctx, name, portals, credentials, *no_refresh),
        Command::SubsystemSet {
            sel,
            change,
            no_refresh,
        } => subsystem::set(&ctx, sel, change, *no_refresh),
        Command::SubsystemRemove(sel) => subsystem::remove(&ctx, sel),
        Command::ProviderAdd {
            name,
            kind,
            settings,
            no_refresh,
        } => provider::add(&ctx, name, kind, settings, *no_refresh),
        Command::ProviderRemove(name) => provider::remove(&ctx, name),
        Command::Change(sel, change) => change::run(&ctx, sel, change),
        Command::Watch {
            refresh_every,
            count,
        } => watch::run(&ctx, *refresh_every, *count),
    }
}

/// An operation's report, with the subsystems it could not do: printed in full, each failure also
/// as a line on stderr (not with `--json`, where the document has them), and the exit status of the
/// failures' class (or 1 when they differ).
pub(crate) fn with_failures(
    mut printed: Printed,
    failures: &[vds_api::SubsystemFailure],
    json: bool,
) -> Printed {
    if failures.is_empty() {
        return printed;
    }
    let classes: Vec<ExitClass> = failures
        .iter()
        .map(|f| {
            let code = u32::from_str_radix(f.error.hresult.trim_start_matches("0x"), 16)
                .map(Hresult::from_code)
                .unwrap_or(Hresult::E_FAIL);
            ExitClass::of(code)
        })
        .collect();
    printed.exit = if classes.iter().all(|c| *c == classes[0]) {
        classes[0]
    } else {
        ExitClass::Other
    };
    if !json {
        printed.warnings = failures
            .iter()
            .map(|f| {
                format!(
                    "{} ({}): {}",
                    f.error.name, f.error.hresult, f.error.message
                )
            })
            .collect();
    }
    printed
}
