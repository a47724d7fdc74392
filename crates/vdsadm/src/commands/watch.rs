//! `vdsadm watch`: the service's watch ([`vds_service::Service::watch`]) in the foreground. Each
//! notification of what it does goes to stdout as it arrives, one line each (with `--json`, one
//! JSON document per line, a `NotificationDoc`); what it does and what fails goes to stderr. It
//! runs until SIGINT or SIGTERM (then the watchers deregister from their servers), until
//! `--count` notifications were printed, or until nothing is left to watch.
//!
//! Everything printed passes through [`crate::terminal::escape`] (text) or JSON, like every other
//! output: the names of subsystems come from the arrays.

use std::collections::HashMap;
use std::io::Write as _;
use std::time::Duration;

use vds_api::{NotificationDoc, OperationReport};
use vds_model::{Error, Hresult, ObjectId};
use vds_service::{WatchEvent, WatchOptions};

use super::{Body, Ctx, Printed};
use crate::error::{CliError, CliResult, ExitClass};
use crate::say;
use crate::terminal::escape;

/// The word for a `VDS_NTT_*` value.
fn object_word(object_type: i32) -> &'static str {
    match object_type {
        30 => "subsystem",
        35 => "port",
        36 => "portal",
        37 => "target",
        38 => "portal group",
        _ => "object",
    }
}

/// Subsystem ids to names, from the cache and from every report, so that a line can say which
/// subsystem (even one that departed).
#[derive(Default)]
struct Names(HashMap<String, String>);

impl Names {
    fn learn(&mut self, provider: &str, name: &str) {
        let id = ObjectId::provider(provider).child("subsystem", name);
        self.0.insert(id.to_string(), name.to_string());
    }

    fn learn_report(&mut self, report: &OperationReport) {
        for s in &report.subsystems {
            self.learn(&s.provider, &s.name);
        }
    }

    fn line(&self, n: &NotificationDoc) -> String {
        let sub = match self.0.get(&n.subsystem) {
            Some(name) => format!("subsystem {name:?} ({})", n.subsystem),
            None => format!("subsystem {}", n.subsystem),
        };
        let what = if n.object_type == 30 {
            sub
        } else {
            format!("{} {} of {sub}", object_word(n.object_type), n.id)
        };
        format!(
            "{} ({}) {what}, provider {:?}",
            n.event_name, n.event, n.provider
        )
    }
}

/// Prints one notification line; `false` when stdout is gone.
fn print(json: bool, names: &Names, n: &NotificationDoc) -> bool {
    let line = if json {
        match serde_json::to_string(n) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            Err(_) => return true,
        }
    } else {
        format!("{}\n", escape(&names.line(n)))
    };
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

/// SIGINT or SIGTERM.
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

/// `watch`.
pub fn run(
    ctx: &Ctx<'_>,
    refresh_every: Option<Duration>,
    count: Option<u64>,
) -> CliResult<Printed> {
    if let Some(r) = ctx.remote()? {
        return follow(ctx, &r, refresh_every, count);
    }
    let rt = ctx.runtime(true)?;
    let service = ctx.service(&rt, false, None)?;
    let json = ctx.json();
    let verbose = ctx.globals.verbose > 0;
    let provider = ctx.globals.provider.clone();
    let failed: Option<Error> = rt.block_on(async {
        let mut names = Names::default();
        if let Ok(rows) = service.list_subsystems(provider.as_deref()) {
            for r in rows {
                names.learn(&r.provider, &r.name);
            }
        }
        let mut watch = service.watch(WatchOptions {
            provider: provider.clone(),
            refresh_interval: refresh_every,
        })?;
        if watch.providers().is_empty() {
            return Err(Error::new(Hresult::VDS_E_NOT_SUPPORTED).because(
                "no provider has anything to watch: an isns provider watches with --control-node \
                 (and --scn-listen for state change notifications); any provider is refreshed \
                 periodically with --refresh-every",
            ));
        }
        let mut printed = 0u64;
        let mut last_error = None;
        let stop = interrupted();
        tokio::pin!(stop);
        loop {
            let event = tokio::select! {
                () = &mut stop => break,
                e = watch.next_event() => match e {
                    Some(e) => e,
                    None => break,
                },
            };
            match event {
                WatchEvent::Started { provider, watcher } => say(&format!(
                    "watching provider {provider:?}{}",
                    if watcher {
                        " (its watcher)"
                    } else {
                        " (periodic refresh)"
                    }
                )),
                WatchEvent::Done {
                    provider,
                    action,
                    report,
                } => {
                    names.learn_report(&report);
                    if verbose {
                        say(&format!(
                            "provider {provider:?}: {action} done, {} notifications",
                            report.notifications
                        ));
                    }
                    for f in &report.failures {
                        say(&format!(
                            "provider {provider:?}: {action}: {} ({}): {}",
                            f.error.name, f.error.hresult, f.error.message
                        ));
                    }
                    for n in &report.events {
                        if !print(json, &names, n) {
                            return Ok(None);
                        }
                        printed += 1;
                        if count.is_some_and(|c| printed >= c) {
                            watch.stop().await;
                            return Ok(None);
                        }
                    }
                }
                WatchEvent::Failed {
                    provider,
                    action,
                    error,
                } => say(&format!(
                    "provider {provider:?}: {action} failed: {} ({}): {}",
                    error.code_name(),
                    error.code_hex(),
                    error.message()
                )),
                WatchEvent::Problem { provider, error } => say(&format!(
                    "provider {provider:?}: {} ({}): {}",
                    error.code_name(),
                    error.code_hex(),
                    error.message()
                )),
                WatchEvent::Ended { provider, error } => match error {
                    Some(e) => {
                        say(&format!(
                            "provider {provider:?}: the watcher stopped: {} ({}): {}",
                            e.code_name(),
                            e.code_hex(),
                            e.message()
                        ));
                        last_error = Some(e);
                    }
                    None => say(&format!("provider {provider:?}: the watcher stopped")),
                },
                _ => {}
            }
        }
        watch.stop().await;
        Ok::<_, Error>(last_error)
    })?;
    let exit = failed
        .as_ref()
        .map_or(ExitClass::Ok, |e| ExitClass::of(e.code()));
    if let Some(e) = failed {
        if exit != ExitClass::Ok {
            return Err(CliError::from(e));
        }
    }
    Ok(Printed {
        body: Body::Text(String::new()),
        warnings: Vec::new(),
        exit,
    })
}

/// `watch` while vdsd serves the store: the daemon runs the watchers and refreshes on its own
/// schedule (two watchers would register twice and contend for the SCN port), so vdsadm follows
/// the daemon's notifications (`/v1/events`) and prints them as it would its own.
fn follow(
    ctx: &Ctx<'_>,
    r: &crate::remote::Remote,
    refresh_every: Option<Duration>,
    count: Option<u64>,
) -> CliResult<Printed> {
    if refresh_every.is_some() {
        return Err(CliError::usage(
            "--refresh-every",
            "vdsd serves this store and refreshes on its own schedule (its [refresh] \
             interval); watch without --refresh-every to follow it",
        ));
    }
    let json = ctx.json();
    let provider = ctx.globals.provider.as_deref();
    let mut names = Names::default();
    let rows: Vec<vds_api::SubsystemRow> = r.get(&crate::remote::Remote::with_provider(
        "/v1/subsystems",
        provider,
    ))?;
    for row in rows {
        names.learn(&row.provider, &row.name);
    }
    let (mut events, rt) = r.events(provider)?;
    say("following vdsd's notifications");
    let mut printed = 0u64;
    let ended: Result<(), Error> = rt.block_on(async {
        let stop = interrupted();
        tokio::pin!(stop);
        loop {
            let ev = tokio::select! {
                () = &mut stop => return Ok(()),
                ev = events.next() => ev?,
            };
            let Some(ev) = ev else {
                say("vdsd ended the stream");
                return Ok(());
            };
            if ev.event.as_deref() == Some("notifications-lost") {
                say("notifications were lost (this watch fell behind vdsd): query again what you watch");
                continue;
            }
            let Some(n) = crate::remote::notification(&ev.data) else {
                continue;
            };
            if !print(json, &names, &n) {
                return Ok(());
            }
            printed += 1;
            if count.is_some_and(|c| printed >= c) {
                return Ok(());
            }
        }
    });
    ended?;
    Ok(Printed {
        body: Body::Text(String::new()),
        warnings: Vec::new(),
        exit: ExitClass::Ok,
    })
}
