//! `vdsadm list providers|subsystems|tportals|targets|tpgroups`: queries, answered from the cache.

use super::{Ctx, Printed, print_doc};
use crate::args::Sel;
use crate::error::CliResult;
use crate::output;

/// `list providers`.
pub fn providers(ctx: &Ctx<'_>) -> CliResult<Printed> {
    let rows = ctx.query_service()?.list_providers()?;
    print_doc(ctx.json(), &rows, output::providers_table(&rows))
}

/// `list subsystems` (of `--provider`, or all).
pub fn subsystems(ctx: &Ctx<'_>) -> CliResult<Printed> {
    let rows = ctx
        .query_service()?
        .list_subsystems(ctx.globals.provider.as_deref())?;
    print_doc(ctx.json(), &rows, output::subsystems_table(&rows))
}

/// `list tportals`.
pub fn portals(ctx: &Ctx<'_>, sel: &Sel) -> CliResult<Printed> {
    let rows = ctx.query_service()?.list_portals(sel)?;
    print_doc(ctx.json(), &rows, output::portals_table(&sel.name, &rows))
}

/// `list targets`.
pub fn targets(ctx: &Ctx<'_>, sel: &Sel) -> CliResult<Printed> {
    let rows = ctx.query_service()?.list_targets(sel)?;
    print_doc(ctx.json(), &rows, output::targets_table(&sel.name, &rows))
}

/// `list tpgroups`.
pub fn portal_groups(ctx: &Ctx<'_>, sel: &Sel, iqn: &str) -> CliResult<Printed> {
    let rows = ctx.query_service()?.list_portal_groups(sel, iqn)?;
    print_doc(ctx.json(), &rows, output::groups_table(iqn, &rows))
}
