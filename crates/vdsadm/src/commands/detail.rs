//! `vdsadm detail subsystem|tportal|target`: queries, answered from the cache.

use super::{Ctx, Printed, print_doc};
use crate::args::{PortalArg, Sel};
use crate::error::CliResult;
use crate::output;

/// `detail subsystem`.
pub fn subsystem(ctx: &Ctx<'_>, sel: &Sel) -> CliResult<Printed> {
    let d = ctx.query_service()?.detail_subsystem(sel)?;
    print_doc(ctx.json(), &d, output::subsystem_detail_text(&d))
}

/// `detail tportal`.
pub fn portal(ctx: &Ctx<'_>, sel: &Sel, portal: &PortalArg) -> CliResult<Printed> {
    let d = ctx
        .query_service()?
        .detail_portal(sel, &portal.to_vds_address())?;
    print_doc(ctx.json(), &d, output::portal_detail_text(&d))
}

/// `detail target`.
pub fn target(ctx: &Ctx<'_>, sel: &Sel, iqn: &str) -> CliResult<Printed> {
    let d = ctx.query_service()?.detail_target(sel, iqn)?;
    print_doc(ctx.json(), &d, output::target_detail_text(&d))
}
