//! The change verbs, in DiskRAID's words: `online tportal`, `offline tportal`, `create target`,
//! `delete target`, `name target`, `create tpgroup`, `delete tpgroup`, `add tportal`, `remove
//! tportal`, `chap target set`, `chap target remember`. Each is one VDS method, made by the service on the subsystem's array; the answer is its
//! result code (success-with-information codes such as `VDS_S_ALREADY_EXISTS` included), the object
//! it made, and the notifications it raised (in JSON, and with `-v`).

use serde_json::{Value, json};
use vds_api::MutationReport;
use vds_model::IscsiPortalStatus;
use vds_service::Change;

use super::{Ctx, Printed, print_doc};
use crate::args::Sel;
use crate::error::CliResult;
use crate::output;
use crate::remote::{self, Remote, portal_text};

/// Any change verb.
pub fn run(ctx: &Ctx<'_>, sel: &Sel, change: &Change) -> CliResult<Printed> {
    let report: MutationReport = match ctx.remote()? {
        Some(r) => {
            let (method, path, body) = request(sel, change)?;
            r.operation(method, &path, body)?
        }
        None => {
            let rt = ctx.runtime(false)?;
            let service = ctx.service(&rt, false, None)?;
            rt.block_on(service.change(sel, change.clone()))?
        }
    };
    print_doc(ctx.json(), &report, || {
        output::mutation_text(&report, ctx.globals.verbose > 0)
    })
}

/// The daemon's call for `change`: method, path (`?provider=` included) and body.
fn request(sel: &Sel, change: &Change) -> CliResult<(&'static str, String, Option<Value>)> {
    let seg = vds_client::segment;
    let p = sel.provider.as_deref();
    let target = |iqn: &str, rest: &str| Remote::with_provider(&Remote::target(sel, iqn, rest), p);
    let secret = |s: &Option<vds_secret::Secret>| -> CliResult<Option<String>> {
        s.as_ref()
            .map(|s| {
                remote::credential(&crate::args::ChapCredential {
                    user: String::new(),
                    secret: s.clone(),
                })
                .map(|c| c.secret)
            })
            .transpose()
    };
    Ok(match change {
        Change::SetPortalStatus { portal, status } => {
            let status = if *status == IscsiPortalStatus::Online {
                "ONLINE"
            } else {
                "OFFLINE"
            };
            (
                "PUT",
                Remote::with_provider(
                    &Remote::subsystem(
                        sel,
                        &format!("/portals/{}/status", seg(&portal_text(portal))),
                    ),
                    p,
                ),
                Some(json!({ "status": status })),
            )
        }
        Change::CreateTarget { iscsi_name, alias } => (
            "POST",
            Remote::with_provider(&Remote::subsystem(sel, "/targets"), p),
            Some(json!({ "iscsi_name": iscsi_name, "alias": alias })),
        ),
        Change::DeleteTarget { iscsi_name } => ("DELETE", target(iscsi_name, ""), None),
        Change::SetTargetAlias { iscsi_name, alias } => (
            "PATCH",
            target(iscsi_name, ""),
            Some(json!({ "alias": alias })),
        ),
        Change::CreatePortalGroup { iscsi_name } => {
            ("POST", target(iscsi_name, "/portal-groups"), None)
        }
        Change::DeletePortalGroup { iscsi_name, tag } => (
            "DELETE",
            target(iscsi_name, &format!("/portal-groups/{tag}")),
            None,
        ),
        Change::AddPortal {
            iscsi_name,
            tag,
            portal,
        } => (
            "POST",
            target(iscsi_name, &format!("/portal-groups/{tag}/portals")),
            Some(json!({ "portal": portal_text(portal) })),
        ),
        Change::RemovePortal {
            iscsi_name,
            tag,
            portal,
        } => (
            "DELETE",
            target(
                iscsi_name,
                &format!("/portal-groups/{tag}/portals/{}", seg(&portal_text(portal))),
            ),
            None,
        ),
        Change::SetTargetSharedSecret {
            iscsi_name,
            secret: s,
            initiator,
        } => (
            "PUT",
            target(iscsi_name, "/chap-secret"),
            Some(json!({ "secret": secret(s)?, "initiator": initiator })),
        ),
        Change::RememberInitiatorSharedSecret {
            iscsi_name,
            initiator,
            secret: s,
        } => (
            "PUT",
            target(
                iscsi_name,
                &format!("/initiator-secrets/{}", seg(initiator)),
            ),
            Some(json!({ "secret": secret(s)? })),
        ),
    })
}
