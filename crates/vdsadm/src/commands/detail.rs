//! `vdsadm detail subsystem|tportal|target`: queries, answered from the cache.

use vds_api::{PortalDetail, SubsystemDetail, TargetDetail};

use super::list::sub_path;
use super::{Ctx, Printed, print_doc};
use crate::args::{PortalArg, Sel};
use crate::error::CliResult;
use crate::output;
use crate::remote::{Remote, portal_text};

/// `detail subsystem`.
pub fn subsystem(ctx: &Ctx<'_>, sel: &Sel) -> CliResult<Printed> {
    let d: SubsystemDetail = match ctx.remote()? {
        Some(r) => r.get(&sub_path(sel, ""))?,
        None => ctx.query_service()?.detail_subsystem(sel)?,
    };
    print_doc(ctx.json(), &d, || output::subsystem_detail_text(&d))
}

/// `detail tportal`.
pub fn portal(ctx: &Ctx<'_>, sel: &Sel, portal: &PortalArg) -> CliResult<Printed> {
    let address = portal.to_vds_address();
    let d: PortalDetail = match ctx.remote()? {
        Some(r) => r.get(&sub_path(
            sel,
            &format!("/portals/{}", vds_client::segment(&portal_text(&address))),
        ))?,
        None => ctx.query_service()?.detail_portal(sel, &address)?,
    };
    print_doc(ctx.json(), &d, || output::portal_detail_text(&d))
}

/// `detail target`.
pub fn target(ctx: &Ctx<'_>, sel: &Sel, iqn: &str) -> CliResult<Printed> {
    let d: TargetDetail = match ctx.remote()? {
        Some(r) => r.get(&Remote::with_provider(
            &Remote::target(sel, iqn, ""),
            sel.provider.as_deref(),
        ))?,
        None => ctx.query_service()?.detail_target(sel, iqn)?,
    };
    print_doc(ctx.json(), &d, || output::target_detail_text(&d))
}
