//! The calls that change things. Each that contacts an array starts an
//! [operation](crate::operations) and answers `202` with its resource (`Location:` names it), or
//! `200` with the finished operation when the client asked to wait (`?wait=SECONDS`) and it
//! finished in time. Removing a provider or a subsystem touches only the store and answers at once.
//!
//! Names are resolved before the operation starts, so a request naming nothing real is refused at
//! once (404) rather than through a failed operation.

use std::future::Future;
use std::sync::Arc;

use axum::Json as Out;
use axum::response::Response;
use vds_api::{
    GroupMemberRequest, InitiatorSecretRequest, OperationDoc, OperationOutput, PortalStatusRequest,
    ProviderAddRequest, ProviderReport, RemoveReport, SettableStatus, SettingValue,
    SubsystemAddRequest, SubsystemSetRequest, TargetAliasRequest, TargetCreateRequest,
    TargetSecretRequest,
};
use vds_model::{Error, IscsiPortalStatus};
use vds_service::{
    Change, NewSubsystem, NewSubsystemCredential, Scope, SubsystemChange, SubsystemSel,
};

use super::openapi::ApiErrors;
use super::query::{WaitParam, operation_named, operation_response};
use super::{
    AppState, Json, Path, ProviderParam, Query, group_named, portal_named, provider_named,
    subsystem_named, target_named,
};
use crate::app::App;
use crate::error::ApiResult;

/// Starts `work` as an operation and answers with it, after waiting as asked.
async fn start<F>(
    app: &Arc<App>,
    name: &str,
    cancelable: bool,
    wait: &WaitParam,
    work: F,
) -> ApiResult<Response>
where
    F: Future<Output = Result<OperationOutput, Error>> + Send + 'static,
{
    let wait = wait.duration()?;
    let op = app.ops.start(name, cancelable, work)?;
    app.metrics.operations_running.set(app.ops.running() as i64);
    if !wait.is_zero() {
        op.wait(wait).await;
    }
    Ok(operation_response(&op))
}

/// `?provider=` and `?wait=` together.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderWait {
    provider: Option<String>,
    wait: Option<u32>,
}

impl ProviderWait {
    fn split(self) -> (ProviderParam, WaitParam) {
        (
            ProviderParam {
                provider: self.provider,
            },
            WaitParam { wait: self.wait },
        )
    }
}

/// `POST /v1/refresh`: `IVdsHwProvider::Refresh` of every provider, or of `?provider=`.
#[utoipa::path(post, path = "/v1/refresh", tag = "operations", params(ProviderParam, WaitParam),
    responses((status = 200, description = "Finished within the wait", body = OperationDoc),
        (status = 202, description = "Started", body = OperationDoc), ApiErrors))]
pub async fn refresh(
    axum::extract::State(app): AppState,
    Query(q): Query<ProviderWait>,
) -> ApiResult<Response> {
    let (p, w) = q.split();
    let scope = match p.provider.as_deref() {
        Some(p) => Scope::Provider(provider_named(&app, p)?),
        None => Scope::All,
    };
    let service = app.service.clone();
    start(&app, "refresh", true, &w, async move {
        service.refresh(scope).await.map(OperationOutput::Operation)
    })
    .await
}

/// `POST /v1/reenumerate`: `IVdsHwProvider::Reenumerate` of every provider, or of `?provider=`.
#[utoipa::path(post, path = "/v1/reenumerate", tag = "operations", params(ProviderParam, WaitParam),
    responses((status = 200, description = "Finished within the wait", body = OperationDoc),
        (status = 202, description = "Started", body = OperationDoc), ApiErrors))]
pub async fn reenumerate(
    axum::extract::State(app): AppState,
    Query(q): Query<ProviderWait>,
) -> ApiResult<Response> {
    let (p, w) = q.split();
    let provider = p
        .provider
        .as_deref()
        .map(|p| provider_named(&app, p))
        .transpose()?;
    let service = app.service.clone();
    start(&app, "reenumerate", true, &w, async move {
        service
            .reenumerate(provider.as_deref())
            .await
            .map(OperationOutput::Operation)
    })
    .await
}

/// `POST /v1/subsystems/{subsystem}/refresh`: the refresh of one subsystem.
#[utoipa::path(post, path = "/v1/subsystems/{subsystem}/refresh", tag = "operations",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"), ProviderParam, WaitParam),
    responses((status = 200, description = "Finished within the wait", body = OperationDoc),
        (status = 202, description = "Started", body = OperationDoc), ApiErrors))]
pub async fn refresh_subsystem(
    axum::extract::State(app): AppState,
    Path(s): Path<String>,
    Query(q): Query<ProviderWait>,
) -> ApiResult<Response> {
    let (p, w) = q.split();
    let sel = subsystem_named(&app, &s, &p)?;
    let service = app.service.clone();
    start(&app, "refresh", true, &w, async move {
        service
            .refresh(Scope::Subsystem(sel))
            .await
            .map(OperationOutput::Operation)
    })
    .await
}

fn settings(map: &std::collections::BTreeMap<String, SettingValue>) -> toml::Table {
    map.iter()
        .map(|(k, v)| {
            let v = match v {
                SettingValue::Integer(i) => toml::Value::Integer(*i),
                SettingValue::Bool(b) => toml::Value::Boolean(*b),
                SettingValue::Text(t) => toml::Value::String(t.clone()),
            };
            (k.clone(), v)
        })
        .collect()
}

/// `POST /v1/providers` (`vdsadm provider add`).
#[utoipa::path(post, path = "/v1/providers", tag = "providers", params(WaitParam),
    request_body = ProviderAddRequest,
    responses((status = 200, description = "Finished within the wait", body = OperationDoc),
        (status = 202, description = "Started", body = OperationDoc), ApiErrors))]
pub async fn add_provider(
    axum::extract::State(app): AppState,
    Query(w): Query<WaitParam>,
    Json(req): Json<ProviderAddRequest>,
) -> ApiResult<Response> {
    vds_store::validate_name("provider", &req.name).map_err(Error::from)?;
    let service = app.service.clone();
    start(&app, "provider add", false, &w, async move {
        service
            .add_provider(&req.name, &req.kind, settings(&req.settings), req.refresh)
            .await
            .map(OperationOutput::Provider)
    })
    .await
}

/// `DELETE /v1/providers/{provider}` (`vdsadm provider remove`).
#[utoipa::path(delete, path = "/v1/providers/{provider}", tag = "providers",
    params(("provider" = String, Path, description = "The provider's id or name")),
    responses((status = 200, description = "Removed", body = ProviderReport), ApiErrors))]
pub async fn remove_provider(
    axum::extract::State(app): AppState,
    Path(p): Path<String>,
) -> ApiResult<Out<ProviderReport>> {
    let name = provider_named(&app, &p)?;
    Ok(Out(app.service.remove_provider(&name).await?))
}

fn credential(c: Option<vds_api::CredentialDoc>) -> Option<NewSubsystemCredential> {
    c.map(|c| NewSubsystemCredential {
        user: c.user,
        secret: vds_store::Secret::new(c.secret.into_bytes()),
    })
}

/// `POST /v1/subsystems` (`vdsadm subsystem add`).
#[utoipa::path(post, path = "/v1/subsystems", tag = "subsystems", params(WaitParam),
    request_body = SubsystemAddRequest,
    responses((status = 200, description = "Finished within the wait", body = OperationDoc),
        (status = 202, description = "Started", body = OperationDoc), ApiErrors))]
pub async fn add_subsystem(
    axum::extract::State(app): AppState,
    Query(w): Query<WaitParam>,
    Json(req): Json<SubsystemAddRequest>,
) -> ApiResult<Response> {
    vds_store::validate_name("subsystem", &req.name).map_err(Error::from)?;
    let provider = req
        .provider
        .as_deref()
        .map(|p| provider_named(&app, p))
        .transpose()?;
    let new = NewSubsystem {
        name: req.name,
        portals: req.portals,
        initiator_name: req.initiator_name,
        chap: credential(req.chap),
        mutual: credential(req.mutual),
    };
    let service = app.service.clone();
    start(&app, "subsystem add", false, &w, async move {
        service
            .add_subsystem(provider.as_deref(), new, req.refresh)
            .await
            .map(OperationOutput::Registration)
    })
    .await
}

/// `PATCH /v1/subsystems/{subsystem}` (`vdsadm subsystem set`).
#[utoipa::path(patch, path = "/v1/subsystems/{subsystem}", tag = "subsystems",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"), ProviderParam, WaitParam),
    request_body = SubsystemSetRequest,
    responses((status = 200, description = "Finished within the wait", body = OperationDoc),
        (status = 202, description = "Started", body = OperationDoc), ApiErrors))]
pub async fn set_subsystem(
    axum::extract::State(app): AppState,
    Path(s): Path<String>,
    Query(q): Query<ProviderWait>,
    Json(req): Json<SubsystemSetRequest>,
) -> ApiResult<Response> {
    let (p, w) = q.split();
    let sel = subsystem_named(&app, &s, &p)?;
    let change = SubsystemChange {
        portals: req.portals,
        initiator_name: req.initiator_name,
        chap: req.chap.map(credential),
        mutual: req.mutual.map(credential),
    };
    let service = app.service.clone();
    start(&app, "subsystem set", false, &w, async move {
        service
            .set_subsystem(&sel, change, req.refresh)
            .await
            .map(OperationOutput::Registration)
    })
    .await
}

/// `DELETE /v1/subsystems/{subsystem}` (`vdsadm subsystem remove`).
#[utoipa::path(delete, path = "/v1/subsystems/{subsystem}", tag = "subsystems",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"), ProviderParam),
    responses((status = 200, description = "Removed", body = RemoveReport), ApiErrors))]
pub async fn remove_subsystem(
    axum::extract::State(app): AppState,
    Path(s): Path<String>,
    Query(q): Query<ProviderParam>,
) -> ApiResult<Out<RemoveReport>> {
    let sel = subsystem_named(&app, &s, &q)?;
    Ok(Out(app.service.remove_subsystem(&sel).await?))
}

/// Starts a change of subsystem `sel`'s array.
async fn change(
    app: &Arc<App>,
    sel: SubsystemSel,
    change: Change,
    w: &WaitParam,
) -> ApiResult<Response> {
    let service = app.service.clone();
    let name = change.operation();
    start(app, name, false, w, async move {
        service
            .change(&sel, change)
            .await
            .map(OperationOutput::Mutation)
    })
    .await
}

/// `PUT …/portals/{portal}/status`: `IVdsIscsiPortal::SetStatus`.
#[utoipa::path(put, path = "/v1/subsystems/{subsystem}/portals/{portal}/status", tag = "portals",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"),
        ("portal" = String, Path, description = "The portal's id or HOST:PORT"), ProviderParam, WaitParam),
    request_body = PortalStatusRequest,
    responses((status = 200, description = "Finished within the wait", body = OperationDoc),
        (status = 202, description = "Started", body = OperationDoc), ApiErrors))]
pub async fn set_portal_status(
    axum::extract::State(app): AppState,
    Path((s, p)): Path<(String, String)>,
    Query(q): Query<ProviderWait>,
    Json(req): Json<PortalStatusRequest>,
) -> ApiResult<Response> {
    let (pp, w) = q.split();
    let sel = subsystem_named(&app, &s, &pp)?;
    let portal = portal_named(&app, &sel, &p)?;
    let status = match req.status {
        SettableStatus::Online => IscsiPortalStatus::Online,
        SettableStatus::Offline => IscsiPortalStatus::Offline,
    };
    change(&app, sel, Change::SetPortalStatus { portal, status }, &w).await
}

/// `POST …/targets`: `IVdsSubSystemIscsi::CreateTarget`.
#[utoipa::path(post, path = "/v1/subsystems/{subsystem}/targets", tag = "targets",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"), ProviderParam, WaitParam),
    request_body = TargetCreateRequest,
    responses((status = 200, description = "Finished within the wait", body = OperationDoc),
        (status = 202, description = "Started", body = OperationDoc), ApiErrors))]
pub async fn create_target(
    axum::extract::State(app): AppState,
    Path(s): Path<String>,
    Query(q): Query<ProviderWait>,
    Json(req): Json<TargetCreateRequest>,
) -> ApiResult<Response> {
    let (p, w) = q.split();
    let sel = subsystem_named(&app, &s, &p)?;
    let iscsi_name = req.iscsi_name.filter(|n| !n.is_empty());
    change(
        &app,
        sel,
        Change::CreateTarget {
            iscsi_name,
            alias: req.alias,
        },
        &w,
    )
    .await
}

/// `PATCH …/targets/{target}`: `IVdsIscsiTarget::SetFriendlyName`.
#[utoipa::path(patch, path = "/v1/subsystems/{subsystem}/targets/{target}", tag = "targets",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"),
        ("target" = String, Path, description = "The target's id or iSCSI name"), ProviderParam, WaitParam),
    request_body = TargetAliasRequest,
    responses((status = 200, description = "Finished within the wait", body = OperationDoc),
        (status = 202, description = "Started", body = OperationDoc), ApiErrors))]
pub async fn set_target_alias(
    axum::extract::State(app): AppState,
    Path((s, t)): Path<(String, String)>,
    Query(q): Query<ProviderWait>,
    Json(req): Json<TargetAliasRequest>,
) -> ApiResult<Response> {
    let (p, w) = q.split();
    let sel = subsystem_named(&app, &s, &p)?;
    let iscsi_name = target_named(&app, &sel, &t)?;
    change(
        &app,
        sel,
        Change::SetTargetAlias {
            iscsi_name,
            alias: req.alias,
        },
        &w,
    )
    .await
}

/// `PUT …/targets/{target}/chap-secret`: `IVdsIscsiTarget::SetSharedSecret`.
#[utoipa::path(put, path = "/v1/subsystems/{subsystem}/targets/{target}/chap-secret", tag = "targets",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"),
        ("target" = String, Path, description = "The target's id or iSCSI name"), ProviderParam, WaitParam),
    request_body = TargetSecretRequest,
    responses((status = 200, description = "Finished within the wait", body = OperationDoc),
        (status = 202, description = "Started", body = OperationDoc), ApiErrors))]
pub async fn set_target_secret(
    axum::extract::State(app): AppState,
    Path((s, t)): Path<(String, String)>,
    Query(q): Query<ProviderWait>,
    Json(req): Json<TargetSecretRequest>,
) -> ApiResult<Response> {
    let (p, w) = q.split();
    let sel = subsystem_named(&app, &s, &p)?;
    let iscsi_name = target_named(&app, &sel, &t)?;
    change(
        &app,
        sel,
        Change::SetTargetSharedSecret {
            iscsi_name,
            secret: req.secret.map(|s| vds_store::Secret::new(s.into_bytes())),
            initiator: req.initiator,
        },
        &w,
    )
    .await
}

/// `PUT …/targets/{target}/initiator-secrets/{initiator}`:
/// `IVdsIscsiTarget::RememberInitiatorSharedSecret`.
#[utoipa::path(put, path = "/v1/subsystems/{subsystem}/targets/{target}/initiator-secrets/{initiator}", tag = "targets",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"),
        ("target" = String, Path, description = "The target's id or iSCSI name"),
        ("initiator" = String, Path, description = "The initiator's iSCSI name"), ProviderParam, WaitParam),
    request_body = InitiatorSecretRequest,
    responses((status = 200, description = "Finished within the wait", body = OperationDoc),
        (status = 202, description = "Started", body = OperationDoc), ApiErrors))]
pub async fn remember_initiator_secret(
    axum::extract::State(app): AppState,
    Path((s, t, initiator)): Path<(String, String, String)>,
    Query(q): Query<ProviderWait>,
    Json(req): Json<InitiatorSecretRequest>,
) -> ApiResult<Response> {
    let (p, w) = q.split();
    let sel = subsystem_named(&app, &s, &p)?;
    let iscsi_name = target_named(&app, &sel, &t)?;
    change(
        &app,
        sel,
        Change::RememberInitiatorSharedSecret {
            iscsi_name,
            initiator,
            secret: req.secret.map(|s| vds_store::Secret::new(s.into_bytes())),
        },
        &w,
    )
    .await
}

/// `DELETE …/targets/{target}`: `IVdsIscsiTarget::Delete`.
#[utoipa::path(delete, path = "/v1/subsystems/{subsystem}/targets/{target}", tag = "targets",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"),
        ("target" = String, Path, description = "The target's id or iSCSI name"), ProviderParam, WaitParam),
    responses((status = 200, description = "Finished within the wait", body = OperationDoc),
        (status = 202, description = "Started", body = OperationDoc), ApiErrors))]
pub async fn delete_target(
    axum::extract::State(app): AppState,
    Path((s, t)): Path<(String, String)>,
    Query(q): Query<ProviderWait>,
) -> ApiResult<Response> {
    let (p, w) = q.split();
    let sel = subsystem_named(&app, &s, &p)?;
    let iscsi_name = target_named(&app, &sel, &t)?;
    change(&app, sel, Change::DeleteTarget { iscsi_name }, &w).await
}

/// `POST …/targets/{target}/portal-groups`: `IVdsIscsiTarget::CreatePortalGroup`.
#[utoipa::path(post, path = "/v1/subsystems/{subsystem}/targets/{target}/portal-groups", tag = "portal groups",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"),
        ("target" = String, Path, description = "The target's id or iSCSI name"), ProviderParam, WaitParam),
    responses((status = 200, description = "Finished within the wait", body = OperationDoc),
        (status = 202, description = "Started", body = OperationDoc), ApiErrors))]
pub async fn create_portal_group(
    axum::extract::State(app): AppState,
    Path((s, t)): Path<(String, String)>,
    Query(q): Query<ProviderWait>,
) -> ApiResult<Response> {
    let (p, w) = q.split();
    let sel = subsystem_named(&app, &s, &p)?;
    let iscsi_name = target_named(&app, &sel, &t)?;
    change(&app, sel, Change::CreatePortalGroup { iscsi_name }, &w).await
}

/// `DELETE …/portal-groups/{group}`: `IVdsIscsiPortalGroup::Delete`.
#[utoipa::path(delete, path = "/v1/subsystems/{subsystem}/targets/{target}/portal-groups/{group}", tag = "portal groups",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"),
        ("target" = String, Path, description = "The target's id or iSCSI name"),
        ("group" = String, Path, description = "The group's id or tag"), ProviderParam, WaitParam),
    responses((status = 200, description = "Finished within the wait", body = OperationDoc),
        (status = 202, description = "Started", body = OperationDoc), ApiErrors))]
pub async fn delete_portal_group(
    axum::extract::State(app): AppState,
    Path((s, t, g)): Path<(String, String, String)>,
    Query(q): Query<ProviderWait>,
) -> ApiResult<Response> {
    let (p, w) = q.split();
    let sel = subsystem_named(&app, &s, &p)?;
    let iscsi_name = target_named(&app, &sel, &t)?;
    let tag = group_named(&app, &sel, &iscsi_name, &g)?;
    change(&app, sel, Change::DeletePortalGroup { iscsi_name, tag }, &w).await
}

/// `POST …/portal-groups/{group}/portals`: `IVdsIscsiPortalGroup::AddPortal`.
#[utoipa::path(post, path = "/v1/subsystems/{subsystem}/targets/{target}/portal-groups/{group}/portals", tag = "portal groups",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"),
        ("target" = String, Path, description = "The target's id or iSCSI name"),
        ("group" = String, Path, description = "The group's id or tag"), ProviderParam, WaitParam),
    request_body = GroupMemberRequest,
    responses((status = 200, description = "Finished within the wait", body = OperationDoc),
        (status = 202, description = "Started", body = OperationDoc), ApiErrors))]
pub async fn add_portal(
    axum::extract::State(app): AppState,
    Path((s, t, g)): Path<(String, String, String)>,
    Query(q): Query<ProviderWait>,
    Json(req): Json<GroupMemberRequest>,
) -> ApiResult<Response> {
    let (p, w) = q.split();
    let sel = subsystem_named(&app, &s, &p)?;
    let iscsi_name = target_named(&app, &sel, &t)?;
    let tag = group_named(&app, &sel, &iscsi_name, &g)?;
    let portal = portal_named(&app, &sel, &req.portal)?;
    change(
        &app,
        sel,
        Change::AddPortal {
            iscsi_name,
            tag,
            portal,
        },
        &w,
    )
    .await
}

/// `DELETE …/portal-groups/{group}/portals/{portal}`: `IVdsIscsiPortalGroup::RemovePortal`.
#[utoipa::path(delete, path = "/v1/subsystems/{subsystem}/targets/{target}/portal-groups/{group}/portals/{portal}", tag = "portal groups",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"),
        ("target" = String, Path, description = "The target's id or iSCSI name"),
        ("group" = String, Path, description = "The group's id or tag"),
        ("portal" = String, Path, description = "The portal's id or HOST:PORT"), ProviderParam, WaitParam),
    responses((status = 200, description = "Finished within the wait", body = OperationDoc),
        (status = 202, description = "Started", body = OperationDoc), ApiErrors))]
pub async fn remove_portal(
    axum::extract::State(app): AppState,
    Path((s, t, g, port)): Path<(String, String, String, String)>,
    Query(q): Query<ProviderWait>,
) -> ApiResult<Response> {
    let (p, w) = q.split();
    let sel = subsystem_named(&app, &s, &p)?;
    let iscsi_name = target_named(&app, &sel, &t)?;
    let tag = group_named(&app, &sel, &iscsi_name, &g)?;
    let portal = portal_named(&app, &sel, &port)?;
    change(
        &app,
        sel,
        Change::RemovePortal {
            iscsi_name,
            tag,
            portal,
        },
        &w,
    )
    .await
}

/// `DELETE /v1/operations/{operation}`: `IVdsAsync::Cancel`.
#[utoipa::path(delete, path = "/v1/operations/{operation}", tag = "operations",
    params(("operation" = String, Path, pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The operation's id")),
    responses((status = 200, description = "Cancelled", body = OperationDoc), ApiErrors))]
pub async fn cancel_operation(
    axum::extract::State(app): AppState,
    Path(id): Path<String>,
) -> ApiResult<Out<OperationDoc>> {
    let op = operation_named(&app, &id)?;
    app.ops.cancel(&op)?;
    Ok(Out(op.doc()))
}
