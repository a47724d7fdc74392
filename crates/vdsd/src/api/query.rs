//! The reads: each one query of the service (answered from the cache, never waiting on an array),
//! returning the document `vdsadm --json` prints for the same question.

use std::time::Duration;

use axum::Json as Out;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;
use vds_api::{
    AssociatedGroup, GroupRow, ObjectDoc, OperationDoc, PortalDetail, PortalRef, PortalRow,
    ProviderRow, ServiceDoc, SubsystemDetail, SubsystemRow, TargetDetail, TargetRow,
};
use vds_model::{Error, Hresult, ObjectId, Subject};
use vds_service::Located;

use super::openapi::ApiErrors;
use super::{
    AppState, Path, ProviderParam, Query, group_named, portal_named, printable, provider_named,
    subsystem_named, target_named,
};
use crate::access::Role;
use crate::error::{ApiError, ApiResult};

/// `GET /v1/service`.
#[utoipa::path(get, path = "/v1/service", tag = "service",
    responses((status = 200, description = "The daemon and the caller's role", body = ServiceDoc), ApiErrors))]
pub async fn service(
    axum::extract::State(app): AppState,
    role: Option<axum::Extension<Role>>,
) -> Out<ServiceDoc> {
    Out(ServiceDoc {
        name: "vdsd".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        store: app.service.root().display().to_string(),
        uptime_seconds: app.started.elapsed().as_secs(),
        caller_role: role.map_or(Role::None, |r| r.0).label().into(),
        last_event_id: app.events.last_id(),
    })
}

/// `GET /v1/objects/{id}`: `IVdsService::GetObject`.
#[utoipa::path(get, path = "/v1/objects/{id}", tag = "service",
    params(("id" = String, Path, pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "A VDS_OBJECT_ID")),
    responses((status = 200, description = "What the id names, and its resource", body = ObjectDoc), ApiErrors))]
pub async fn object(
    axum::extract::State(app): AppState,
    Path(id): Path<String>,
) -> ApiResult<Out<ObjectDoc>> {
    let uuid = Uuid::parse_str(&id).map_err(|_| {
        ApiError::malformed(format!("object id {}", printable(&id)), "it is not a GUID")
    })?;
    let oid = ObjectId(uuid);
    let located = app.service.locate(oid)?;
    let sub_id = |sel: &vds_service::SubsystemSel| {
        ObjectId::provider(sel.provider.as_deref().unwrap_or_default())
            .child("subsystem", &sel.name)
    };
    let (kind, vds, path) = match &located {
        Located::Provider(_) => ("provider", 1, format!("/v1/providers/{id}")),
        Located::Subsystem(_) => ("subsystem", 30, format!("/v1/subsystems/{id}")),
        Located::Portal(sel, _) => (
            "portal",
            36,
            format!("/v1/subsystems/{}/portals/{id}", sub_id(sel)),
        ),
        Located::Target(sel, _) => (
            "target",
            37,
            format!("/v1/subsystems/{}/targets/{id}", sub_id(sel)),
        ),
        Located::PortalGroup(sel, iqn, _) => {
            let target = sub_id(sel).child("target", iqn);
            let target = app
                .service
                .detail_target(sel, iqn)
                .map(|t| t.target.id)
                .unwrap_or_else(|_| target.to_string());
            (
                "portal_group",
                38,
                format!(
                    "/v1/subsystems/{}/targets/{target}/portal-groups/{id}",
                    sub_id(sel)
                ),
            )
        }
    };
    Ok(Out(ObjectDoc {
        id: oid.to_string(),
        object_type: kind.into(),
        vds_object_type: vds,
        path,
    }))
}

/// `GET /v1/providers`: `IVdsService::QueryProviders` (`vdsadm list providers`).
#[utoipa::path(get, path = "/v1/providers", tag = "providers",
    responses((status = 200, description = "The providers, in configuration order", body = Vec<ProviderRow>), ApiErrors))]
pub async fn providers(axum::extract::State(app): AppState) -> ApiResult<Out<Vec<ProviderRow>>> {
    Ok(Out(app.service.list_providers()?))
}

/// `GET /v1/providers/{provider}`.
#[utoipa::path(get, path = "/v1/providers/{provider}", tag = "providers",
    params(("provider" = String, Path, description = "The provider's id or name")),
    responses((status = 200, description = "The provider", body = ProviderRow), ApiErrors))]
pub async fn provider(
    axum::extract::State(app): AppState,
    Path(p): Path<String>,
) -> ApiResult<Out<ProviderRow>> {
    let name = provider_named(&app, &p)?;
    app.service
        .list_providers()?
        .into_iter()
        .find(|r| r.name == name)
        .map(Out)
        .ok_or_else(|| {
            Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND)
                .about(Subject::Provider(name))
                .into()
        })
}

/// `GET /v1/subsystems`: `QuerySubSystems` of each provider (`vdsadm list subsystems`).
#[utoipa::path(get, path = "/v1/subsystems", tag = "subsystems", params(ProviderParam),
    responses((status = 200, description = "The subsystems", body = Vec<SubsystemRow>), ApiErrors))]
pub async fn subsystems(
    axum::extract::State(app): AppState,
    Query(q): Query<ProviderParam>,
) -> ApiResult<Out<Vec<SubsystemRow>>> {
    let provider = q
        .provider
        .as_deref()
        .map(|p| provider_named(&app, p))
        .transpose()?;
    Ok(Out(app.service.list_subsystems(provider.as_deref())?))
}

/// `GET /v1/subsystems/{subsystem}` (`vdsadm detail subsystem`).
#[utoipa::path(get, path = "/v1/subsystems/{subsystem}", tag = "subsystems",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"), ProviderParam),
    responses((status = 200, description = "The subsystem", body = SubsystemDetail), ApiErrors))]
pub async fn subsystem(
    axum::extract::State(app): AppState,
    Path(s): Path<String>,
    Query(q): Query<ProviderParam>,
) -> ApiResult<Out<SubsystemDetail>> {
    let sel = subsystem_named(&app, &s, &q)?;
    Ok(Out(app.service.detail_subsystem(&sel)?))
}

/// `GET /v1/subsystems/{subsystem}/portals`: `IVdsSubSystemIscsi::QueryPortals` (`vdsadm list
/// tportals`).
#[utoipa::path(get, path = "/v1/subsystems/{subsystem}/portals", tag = "portals",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"), ProviderParam),
    responses((status = 200, description = "Its portals, in QueryPortals order", body = Vec<PortalRow>), ApiErrors))]
pub async fn portals(
    axum::extract::State(app): AppState,
    Path(s): Path<String>,
    Query(q): Query<ProviderParam>,
) -> ApiResult<Response> {
    // The answer's bytes are kept under the stamp of the subsystem's picture they were read from
    // (`crate::answers`) and sent again while the service still answers that stamp: a repeated
    // question about an unchanged subsystem builds no document and no JSON. (A comment, not the
    // doc: the doc is the OpenAPI description.)
    let sel = subsystem_named(&app, &s, &q)?;
    let stamp = app.service.portals_stamp(&sel)?;
    if let Some(kept) = app.answers.get(stamp) {
        return Ok(json_bytes(kept));
    }
    let (stamp, rows) = app.service.list_portals_stamped(&sel)?;
    let bytes =
        axum::body::Bytes::from(serde_json::to_vec(&rows).map_err(|e| {
            ApiError::from(Error::new(Hresult::E_UNEXPECTED).because(e.to_string()))
        })?);
    app.answers.keep(stamp, bytes.clone());
    Ok(json_bytes(bytes))
}

/// A JSON answer already serialized: the same status and headers as [`axum::Json`]'s.
fn json_bytes(bytes: axum::body::Bytes) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// `GET …/portals/{portal}` (`vdsadm detail tportal`).
#[utoipa::path(get, path = "/v1/subsystems/{subsystem}/portals/{portal}", tag = "portals",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"),
        ("portal" = String, Path, description = "The portal's id or HOST:PORT"), ProviderParam),
    responses((status = 200, description = "The portal and the groups that hold it", body = PortalDetail), ApiErrors))]
pub async fn portal(
    axum::extract::State(app): AppState,
    Path((s, p)): Path<(String, String)>,
    Query(q): Query<ProviderParam>,
) -> ApiResult<Out<PortalDetail>> {
    let sel = subsystem_named(&app, &s, &q)?;
    let address = portal_named(&app, &sel, &p)?;
    Ok(Out(app.service.detail_portal(&sel, &address)?))
}

/// `GET …/portals/{portal}/portal-groups`: `IVdsIscsiPortal::QueryAssociatedPortalGroups`.
#[utoipa::path(get, path = "/v1/subsystems/{subsystem}/portals/{portal}/portal-groups", tag = "portals",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"),
        ("portal" = String, Path, description = "The portal's id or HOST:PORT"), ProviderParam),
    responses((status = 200, description = "The groups that hold the portal", body = Vec<AssociatedGroup>), ApiErrors))]
pub async fn portal_groups_of_portal(
    axum::extract::State(app): AppState,
    Path((s, p)): Path<(String, String)>,
    Query(q): Query<ProviderParam>,
) -> ApiResult<Out<Vec<AssociatedGroup>>> {
    let sel = subsystem_named(&app, &s, &q)?;
    let address = portal_named(&app, &sel, &p)?;
    Ok(Out(app
        .service
        .detail_portal(&sel, &address)?
        .portal_groups))
}

/// `GET …/targets`: `IVdsSubSystemIscsi::QueryTargets` (`vdsadm list targets`).
#[utoipa::path(get, path = "/v1/subsystems/{subsystem}/targets", tag = "targets",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"), ProviderParam),
    responses((status = 200, description = "Its targets", body = Vec<TargetRow>), ApiErrors))]
pub async fn targets(
    axum::extract::State(app): AppState,
    Path(s): Path<String>,
    Query(q): Query<ProviderParam>,
) -> ApiResult<Out<Vec<TargetRow>>> {
    let sel = subsystem_named(&app, &s, &q)?;
    Ok(Out(app.service.list_targets(&sel)?))
}

/// `GET …/targets/{target}` (`vdsadm detail target`).
#[utoipa::path(get, path = "/v1/subsystems/{subsystem}/targets/{target}", tag = "targets",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"),
        ("target" = String, Path, description = "The target's id or iSCSI name"), ProviderParam),
    responses((status = 200, description = "The target and its groups", body = TargetDetail), ApiErrors))]
pub async fn target(
    axum::extract::State(app): AppState,
    Path((s, t)): Path<(String, String)>,
    Query(q): Query<ProviderParam>,
) -> ApiResult<Out<TargetDetail>> {
    let sel = subsystem_named(&app, &s, &q)?;
    let iqn = target_named(&app, &sel, &t)?;
    Ok(Out(app.service.detail_target(&sel, &iqn)?))
}

/// `GET …/targets/{target}/portal-groups`: `IVdsIscsiTarget::QueryPortalGroups` (`vdsadm list
/// tpgroups`).
#[utoipa::path(get, path = "/v1/subsystems/{subsystem}/targets/{target}/portal-groups", tag = "portal groups",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"),
        ("target" = String, Path, description = "The target's id or iSCSI name"), ProviderParam),
    responses((status = 200, description = "The target's portal groups", body = Vec<GroupRow>), ApiErrors))]
pub async fn portal_groups(
    axum::extract::State(app): AppState,
    Path((s, t)): Path<(String, String)>,
    Query(q): Query<ProviderParam>,
) -> ApiResult<Out<Vec<GroupRow>>> {
    let sel = subsystem_named(&app, &s, &q)?;
    let iqn = target_named(&app, &sel, &t)?;
    Ok(Out(app.service.list_portal_groups(&sel, &iqn)?))
}

/// `GET …/portal-groups/{group}`.
#[utoipa::path(get, path = "/v1/subsystems/{subsystem}/targets/{target}/portal-groups/{group}", tag = "portal groups",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"),
        ("target" = String, Path, description = "The target's id or iSCSI name"),
        ("group" = String, Path, description = "The group's id or tag"), ProviderParam),
    responses((status = 200, description = "The portal group", body = GroupRow), ApiErrors))]
pub async fn portal_group(
    axum::extract::State(app): AppState,
    Path((s, t, g)): Path<(String, String, String)>,
    Query(q): Query<ProviderParam>,
) -> ApiResult<Out<GroupRow>> {
    let sel = subsystem_named(&app, &s, &q)?;
    let iqn = target_named(&app, &sel, &t)?;
    let tag = group_named(&app, &sel, &iqn, &g)?;
    Ok(Out(app.service.detail_portal_group(&sel, &iqn, tag)?))
}

/// `GET …/portal-groups/{group}/portals`: `IVdsIscsiPortalGroup::QueryAssociatedPortals`.
#[utoipa::path(get, path = "/v1/subsystems/{subsystem}/targets/{target}/portal-groups/{group}/portals", tag = "portal groups",
    params(("subsystem" = String, Path, description = "The subsystem's id or name"),
        ("target" = String, Path, description = "The target's id or iSCSI name"),
        ("group" = String, Path, description = "The group's id or tag"), ProviderParam),
    responses((status = 200, description = "The group's portals", body = Vec<PortalRef>), ApiErrors))]
pub async fn portals_of_group(
    axum::extract::State(app): AppState,
    Path((s, t, g)): Path<(String, String, String)>,
    Query(q): Query<ProviderParam>,
) -> ApiResult<Out<Vec<PortalRef>>> {
    let sel = subsystem_named(&app, &s, &q)?;
    let iqn = target_named(&app, &sel, &t)?;
    let tag = group_named(&app, &sel, &iqn, &g)?;
    Ok(Out(app
        .service
        .detail_portal_group(&sel, &iqn, tag)?
        .portals))
}

/// `GET /v1/operations`.
#[utoipa::path(get, path = "/v1/operations", tag = "operations",
    responses((status = 200, description = "The operations kept, oldest first", body = Vec<OperationDoc>), ApiErrors))]
pub async fn operations(axum::extract::State(app): AppState) -> Out<Vec<OperationDoc>> {
    Out(app.ops.list().iter().map(|o| o.doc()).collect())
}

/// `?wait=SECONDS`: `IVdsAsync::Wait` with a deadline.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WaitParam {
    /// Wait up to this many seconds for the operation to finish (0 to 30).
    #[param(minimum = 0, maximum = 30)]
    pub wait: Option<u32>,
}

/// The most a request waits for an operation.
pub const MAX_WAIT: u32 = 30;

impl WaitParam {
    /// The wait asked for, checked.
    pub fn duration(&self) -> ApiResult<Duration> {
        match self.wait {
            None => Ok(Duration::ZERO),
            Some(s) if s <= MAX_WAIT => Ok(Duration::from_secs(u64::from(s))),
            Some(s) => Err(ApiError::malformed(
                "wait",
                format!("{s} seconds is over the most a request may wait ({MAX_WAIT})"),
            )),
        }
    }
}

/// An operation's resource: 200 when it is done, 202 while it runs.
pub fn operation_response(op: &crate::operations::Operation) -> Response {
    let status = if op.is_done() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let mut r = (status, Out(op.doc())).into_response();
    if let Ok(v) = format!("/v1/operations/{}", op.id()).parse() {
        r.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    r
}

/// The operation a segment names.
pub fn operation_named(
    app: &crate::app::App,
    segment: &str,
) -> ApiResult<std::sync::Arc<crate::operations::Operation>> {
    let id = Uuid::parse_str(segment).map_err(|_| {
        ApiError::malformed(
            format!("operation {}", printable(segment)),
            "it is not a GUID",
        )
    })?;
    app.ops.get(id).ok_or_else(|| {
        Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND)
            .about(Subject::Other(format!("operation {id}")))
            .because("no such operation is kept (finished ones are forgotten after 1024 newer)")
            .into()
    })
}

/// `GET /v1/operations/{operation}`: `IVdsAsync::QueryStatus`, or `Wait` with `?wait=`.
#[utoipa::path(get, path = "/v1/operations/{operation}", tag = "operations",
    params(("operation" = String, Path, pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The operation's id"), WaitParam),
    responses((status = 200, description = "The operation, finished", body = OperationDoc),
        (status = 202, description = "The operation, still running", body = OperationDoc), ApiErrors))]
pub async fn operation(
    axum::extract::State(app): AppState,
    Path(id): Path<String>,
    Query(w): Query<WaitParam>,
) -> ApiResult<Response> {
    let op = operation_named(&app, &id)?;
    let wait = w.duration()?;
    if !wait.is_zero() {
        op.wait(wait).await;
    }
    Ok(operation_response(&op))
}
