//! `vdsadm provider add|remove`: provider instances of a kind.

use super::{Ctx, Printed, print_doc};
use crate::error::CliResult;
use crate::output;
use crate::progress::Bar;

/// `provider add`.
pub fn add(
    ctx: &Ctx<'_>,
    name: &str,
    kind: &str,
    settings: &toml::Table,
    no_refresh: bool,
) -> CliResult<Printed> {
    let rt = ctx.runtime(true)?;
    let bar = Bar::new(0, "add");
    let service = ctx.service(&rt, true, Some(&bar))?;
    let report = rt.block_on(service.add_provider(name, kind, settings.clone(), !no_refresh));
    bar.finish();
    let report = report?;
    print_doc(ctx.json(), &report, output::provider_report_text(&report))
}

/// `provider remove`.
pub fn remove(ctx: &Ctx<'_>, name: &str) -> CliResult<Printed> {
    let rt = ctx.runtime(false)?;
    let service = ctx.service(&rt, false, None)?;
    let report = rt.block_on(service.remove_provider(name))?;
    print_doc(ctx.json(), &report, output::provider_report_text(&report))
}
