//! `vdsadm reenumerate`: IVdsHwProvider::Reenumerate of every provider (or of `--provider`),
//! rebuilding a corrupt cache.

use super::{Ctx, Printed, print_doc, with_failures};
use crate::error::CliResult;
use crate::output;
use crate::progress::Bar;

/// `reenumerate`.
pub fn run(ctx: &Ctx<'_>) -> CliResult<Printed> {
    let rt = ctx.runtime(true)?;
    let bar = Bar::new(0, "reenumerate");
    let service = ctx.service(&rt, false, Some(&bar))?;
    let report = rt.block_on(service.reenumerate(ctx.globals.provider.as_deref()));
    bar.finish();
    let report = report?;
    let printed = print_doc(ctx.json(), &report, output::operation_text(&report))?;
    Ok(with_failures(printed, &report.failures, ctx.json()))
}
