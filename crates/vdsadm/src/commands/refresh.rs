//! `vdsadm refresh [--subsystem NAME]`: IVdsHwProvider::Refresh of every subsystem (of
//! `--provider`), or of one.

use vds_api::OperationReport;
use vds_service::Scope;

use super::{Ctx, Printed, print_report};
use crate::args::Sel;
use crate::error::CliResult;
use crate::progress::Bar;
use crate::remote::Remote;

/// `refresh`.
pub fn run(ctx: &Ctx<'_>, sel: Option<&Sel>) -> CliResult<Printed> {
    if let Some(r) = ctx.remote()? {
        let path = match sel {
            Some(sel) => super::list::sub_path(sel, "/refresh"),
            None => Remote::with_provider("/v1/refresh", ctx.globals.provider.as_deref()),
        };
        let report: OperationReport = r.operation("POST", &path, None)?;
        return Ok(print_report(ctx.json(), report));
    }
    // One thread, even for a fleet: a refresh mostly waits for arrays, its saves run on the
    // runtime's blocking threads, and a second worker only adds wake-ups between threads (the
    // same wall time for 7% more CPU, unchanged or changed arrays alike; docs/PERFORMANCE.md).
    let rt = ctx.runtime(false)?;
    let bar = Bar::new(0, "refresh");
    let service = ctx.service(&rt, false, Some(&bar))?;
    let scope = match (sel, &ctx.globals.provider) {
        (Some(sel), _) => Scope::Subsystem(sel.clone()),
        (None, Some(p)) => Scope::Provider(p.clone()),
        (None, None) => Scope::All,
    };
    let report = rt.block_on(service.refresh(scope));
    bar.finish();
    Ok(print_report(ctx.json(), report?))
}
