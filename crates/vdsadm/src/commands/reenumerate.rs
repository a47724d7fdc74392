//! `vdsadm reenumerate`: IVdsHwProvider::Reenumerate of every provider (or of `--provider`),
//! rebuilding a corrupt cache.

use vds_api::OperationReport;

use super::{Ctx, Printed, print_report};
use crate::error::CliResult;
use crate::progress::Bar;
use crate::remote::Remote;

/// `reenumerate`.
pub fn run(ctx: &Ctx<'_>) -> CliResult<Printed> {
    if let Some(r) = ctx.remote()? {
        let path = Remote::with_provider("/v1/reenumerate", ctx.globals.provider.as_deref());
        let report: OperationReport = r.operation("POST", &path, None)?;
        return Ok(print_report(ctx.json(), report));
    }
    let rt = ctx.runtime(true)?;
    let bar = Bar::new(0, "reenumerate");
    let service = ctx.service(&rt, false, Some(&bar))?;
    let report = rt.block_on(service.reenumerate(ctx.globals.provider.as_deref()));
    bar.finish();
    Ok(print_report(ctx.json(), report?))
}
