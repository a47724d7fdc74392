//! `vdsadm subsystem add|set|remove`: registrations with a provider that takes them (SendTargets).

use vds_api::{AddReport, RemoveReport, SubsystemAddRequest, SubsystemSetRequest};
use vds_service::NewSubsystem;

use super::list::sub_path;
use super::{Ctx, Printed, print_doc};
use crate::args::{Credentials, PortalArg, Sel};
use crate::error::CliResult;
use crate::output;
use crate::progress::Bar;
use crate::remote;

/// `subsystem add`.
pub fn add(
    ctx: &Ctx<'_>,
    name: &str,
    portals: &[PortalArg],
    creds: &Credentials,
    no_refresh: bool,
) -> CliResult<Printed> {
    let report: AddReport = match ctx.remote()? {
        Some(r) => {
            let request = SubsystemAddRequest {
                name: name.to_string(),
                provider: ctx.globals.provider.clone(),
                portals: portals.iter().map(ToString::to_string).collect(),
                initiator_name: creds.initiator_name.clone(),
                chap: creds.chap.as_ref().map(remote::credential).transpose()?,
                mutual: creds.mutual.as_ref().map(remote::credential).transpose()?,
                refresh: !no_refresh,
            };
            r.operation("POST", "/v1/subsystems", remote::body(&request))?
        }
        None => {
            let rt = ctx.runtime(false)?;
            let bar = Bar::new(1, "add");
            let service = ctx.service(&rt, true, Some(&bar))?;
            let new = NewSubsystem {
                name: name.to_string(),
                portals: portals.iter().map(ToString::to_string).collect(),
                initiator_name: creds.initiator_name.clone(),
                chap: creds.chap.clone(),
                mutual: creds.mutual.clone(),
            };
            let report = rt.block_on(service.add_subsystem(
                ctx.globals.provider.as_deref(),
                new,
                !no_refresh,
            ));
            bar.finish();
            report?
        }
    };
    let mut printed = print_doc(ctx.json(), &report, || {
        let mut text = format!("Subsystem {name:?} registered.\n");
        text.push_str(&output::refreshed_table(report.subsystem.as_slice()));
        text
    })?;
    if let Some(s) = report.subsystem.as_ref().filter(|s| s.status != "ONLINE") {
        printed.warnings.push(format!(
            "warning: subsystem {name:?} is {}{}",
            s.status,
            s.detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        ));
    }
    Ok(printed)
}

/// `subsystem set`.
pub fn set(
    ctx: &Ctx<'_>,
    sel: &Sel,
    change: &vds_service::SubsystemChange,
    no_refresh: bool,
) -> CliResult<Printed> {
    let report: AddReport = match ctx.remote()? {
        Some(r) => {
            let credential = |c: &Option<Option<vds_service::NewSubsystemCredential>>| {
                c.as_ref()
                    .map(|c| c.as_ref().map(remote::credential).transpose())
                    .transpose()
            };
            let request = SubsystemSetRequest {
                portals: change.portals.clone(),
                initiator_name: change.initiator_name.clone(),
                chap: credential(&change.chap)?,
                mutual: credential(&change.mutual)?,
                refresh: !no_refresh,
            };
            r.operation("PATCH", &sub_path(sel, ""), remote::body(&request))?
        }
        None => {
            let rt = ctx.runtime(false)?;
            let service = ctx.service(&rt, false, None)?;
            rt.block_on(service.set_subsystem(sel, change.clone(), !no_refresh))?
        }
    };
    print_doc(ctx.json(), &report, || {
        let mut text = format!("Subsystem {:?} changed.\n", sel.name);
        text.push_str(&output::refreshed_table(report.subsystem.as_slice()));
        text
    })
}

/// `subsystem remove`.
pub fn remove(ctx: &Ctx<'_>, sel: &Sel) -> CliResult<Printed> {
    let report: RemoveReport = match ctx.remote()? {
        Some(r) => r.call("DELETE", &sub_path(sel, ""), None)?,
        None => {
            let rt = ctx.runtime(false)?;
            let service = ctx.service(&rt, false, None)?;
            rt.block_on(service.remove_subsystem(sel))?
        }
    };
    print_doc(ctx.json(), &report, || {
        format!("Subsystem {:?} removed.\n", sel.name)
    })
}
