//! `vdsadm list providers|subsystems|tportals|targets|tpgroups`: queries, answered from the cache.

use vds_api::{GroupRow, PortalRow, ProviderRow, SubsystemRow, TargetRow};

use super::{Ctx, Printed, print_doc};
use crate::args::Sel;
use crate::error::CliResult;
use crate::output;
use crate::remote::Remote;

/// `list providers`.
pub fn providers(ctx: &Ctx<'_>) -> CliResult<Printed> {
    let rows: Vec<ProviderRow> = match ctx.remote()? {
        Some(r) => r.get("/v1/providers")?,
        None => ctx.query_service()?.list_providers()?,
    };
    print_doc(ctx.json(), &rows, || output::providers_table(&rows))
}

/// `list subsystems` (of `--provider`, or all).
pub fn subsystems(ctx: &Ctx<'_>) -> CliResult<Printed> {
    let provider = ctx.globals.provider.as_deref();
    let rows: Vec<SubsystemRow> = match ctx.remote()? {
        Some(r) => r.get(&Remote::with_provider("/v1/subsystems", provider))?,
        None => ctx.query_service()?.list_subsystems(provider)?,
    };
    print_doc(ctx.json(), &rows, || output::subsystems_table(&rows))
}

/// `list tportals`.
pub fn portals(ctx: &Ctx<'_>, sel: &Sel) -> CliResult<Printed> {
    let rows: Vec<PortalRow> = match ctx.remote()? {
        Some(r) => r.get(&sub_path(sel, "/portals"))?,
        None => ctx.query_service()?.list_portals(sel)?,
    };
    print_doc(ctx.json(), &rows, || {
        output::portals_table(&sel.name, &rows)
    })
}

/// `list targets`.
pub fn targets(ctx: &Ctx<'_>, sel: &Sel) -> CliResult<Printed> {
    let rows: Vec<TargetRow> = match ctx.remote()? {
        Some(r) => r.get(&sub_path(sel, "/targets"))?,
        None => ctx.query_service()?.list_targets(sel)?,
    };
    print_doc(ctx.json(), &rows, || {
        output::targets_table(&sel.name, &rows)
    })
}

/// `list tpgroups`.
pub fn portal_groups(ctx: &Ctx<'_>, sel: &Sel, iqn: &str) -> CliResult<Printed> {
    let rows: Vec<GroupRow> = match ctx.remote()? {
        Some(r) => r.get(&Remote::with_provider(
            &Remote::target(sel, iqn, "/portal-groups"),
            sel.provider.as_deref(),
        ))?,
        None => ctx.query_service()?.list_portal_groups(sel, iqn)?,
    };
    print_doc(ctx.json(), &rows, || output::groups_table(iqn, &rows))
}

/// `/v1/subsystems/{name}{rest}`, with `?provider=` when the subsystem's provider is named.
pub(super) fn sub_path(sel: &Sel, rest: &str) -> String {
    Remote::with_provider(&Remote::subsystem(sel, rest), sel.provider.as_deref())
}
