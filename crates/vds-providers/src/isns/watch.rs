//! The watcher of an `isns` provider with a Control node: keeps the registration alive and, with
//! an SCN listener, turns state change notifications into refreshes.
//!
//! A session: register our entity and node (type Control; with the listener, a portal whose SCN
//! port is the listener's, `REPLACE` so a stale registration of ours goes), `SCNReg` for every
//! event, then ask for one reenumerate (what changed before the registration raised no SCN to
//! us). Then, until told to stop: renew the registration (an update, and `SCNReg` again) before
//! half the registration period has passed; and for each SCN, for each node it names (our own
//! node excepted, whose renewals raise SCNs too):
//!
//! | what happened to node N | request |
//! |---|---|
//! | removed, and N is a target of subsystem S with other targets | refresh S |
//! | removed, and N was the last target of S | reenumerate (S departs) |
//! | added or changed, N's entity E is a known subsystem | refresh E |
//! | added or changed, N is a target of an unknown entity | reenumerate (E arrives) |
//! | added or changed, N is no target but was one of S | as removed |
//! | anything else (an initiator, a node we never showed) | nothing |
//!
//! where "known" is the provider's current picture, which the service passes in. A session that
//! fails (the server went away) is reported as a problem and started again after a pause that
//! doubles up to a minute. On stop, the watcher deregisters (SCNDereg, DevDereg) within a
//! deadline. Portal changes raise no SCN in open-isns: the periodic refresh covers them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use isns_client::{Client, ControlNode, ControlPortal, ScnBitmap, ScnListener, ScnListenerConfig};
use isns_proto::NodeType;
use tokio::time::Instant;
use vds_model::{Error, Hresult, SubSystemSnapshot, Subject, Win32Error};

use super::kind::IsnsSettings;
use super::{IsnsOptions, client_error, renew_interval, server_subject};
use crate::{WatchContext, WatchMessage};

/// The longest pause between two attempts to start a session.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How long the goodbye (SCNDereg, DevDereg) may take when stopping.
const GOODBYE_DEADLINE: Duration = Duration::from_secs(3);

/// Our Control node: the entity is named after our source name; `scn` is the listener's address.
pub(crate) fn control_node(
    settings: &IsnsSettings,
    scn: Option<std::net::SocketAddr>,
) -> ControlNode {
    ControlNode {
        name: settings.source_name.clone(),
        entity_id: settings.source_name.clone(),
        portal: scn.map(|a| ControlPortal {
            ip: a.ip(),
            port: a.port(),
            scn_port: Some(a.port()),
        }),
        registration_period: None,
    }
}

/// Why a session ended.
enum End {
    /// Told to stop.
    Stop,
    /// It failed; start again after a pause.
    Failed(Error),
}

/// The watcher (see the module documentation). Returns when told to stop (`Ok`), or at once when
/// the listener cannot be bound or the service stopped listening (`Err`).
pub(crate) async fn run(
    settings: IsnsSettings,
    options: Arc<IsnsOptions>,
    mut ctx: WatchContext,
) -> Result<(), Error> {
    let server = settings.server.to_string();
    let mut listener = match settings.scn_listen {
        Some(addr) => Some(
            ScnListener::bind(ScnListenerConfig::new(addr))
                .await
                .map_err(|e| {
                    Error::new(Hresult::from_io_error(&e))
                        .about(Subject::Other(format!("SCN listener {addr}")))
                        .because(format!("cannot listen for state change notifications: {e}"))
                })?,
        ),
        None => None,
    };
    let node = control_node(&settings, listener.as_ref().map(ScnListener::local_addr));
    let mut client = Client::new(server.clone(), options.client_config(&settings.source_name));
    let mut pause = Duration::from_secs(1);
    loop {
        let end = session(
            &settings,
            &server,
            &node,
            &mut client,
            listener.as_mut(),
            &mut ctx,
        )
        .await;
        match end {
            End::Stop => break,
            End::Failed(e) => {
                if ctx.messages.send(WatchMessage::Problem(e)).await.is_err() {
                    return Err(gone());
                }
                client.close();
                tokio::select! {
                    _ = ctx.shutdown.changed() => break,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(MAX_BACKOFF);
            }
        }
        if *ctx.shutdown.borrow() {
            break;
        }
    }
    goodbye(&mut client, &node, listener.is_some()).await;
    Ok(())
}

fn gone() -> Error {
    Error::new(Hresult::E_UNEXPECTED).because("the service stopped taking the watcher's requests")
}

/// Registers, then serves SCNs and renewals until told to stop or something fails.
async fn session(
    settings: &IsnsSettings,
    server: &str,
    node: &ControlNode,
    client: &mut Client,
    mut listener: Option<&mut ScnListener>,
    ctx: &mut WatchContext,
) -> End {
    let mut renew_at = match register(client, node, server, listener.is_some(), true).await {
        Ok(at) => at,
        Err(e) => return End::Failed(e),
    };
    if listener.is_some() && ctx.messages.send(WatchMessage::Reenumerate).await.is_err() {
        return End::Failed(gone());
    }
    loop {
        tokio::select! {
            _ = ctx.shutdown.changed() => return End::Stop,
            () = tokio::time::sleep_until(renew_at) => {
                match register(client, node, server, listener.is_some(), false).await {
                    Ok(at) => renew_at = at,
                    Err(e) => return End::Failed(e),
                }
            }
            n = async {
                match listener.as_deref_mut() {
                    Some(l) => l.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let Some(n) = n else {
                    return End::Failed(Error::new(Hresult::E_UNEXPECTED).because("the SCN listener stopped"));
                };
                let requests = match requests_for(settings, server, client, ctx, &n.scn.events).await {
                    Ok(r) => r,
                    Err(e) => return End::Failed(e),
                };
                for r in requests {
                    if ctx.messages.send(r).await.is_err() {
                        return End::Failed(gone());
                    }
                }
            }
        }
    }
}

/// Registers our node (`replace` at the start of a session) and, with a listener, for SCNs;
/// returns when to renew.
async fn register(
    client: &mut Client,
    node: &ControlNode,
    server: &str,
    scn: bool,
    replace: bool,
) -> Result<Instant, Error> {
    let reply = client
        .register_control_node(node, replace)
        .await
        .map_err(|e| client_error(server, &e).because("registering as a Control node"))?;
    if scn {
        client
            .scn_register(node, ScnBitmap::ALL_EVENTS)
            .await
            .map_err(|e| client_error(server, &e).because("registering for SCNs"))?;
    }
    let every = renew_interval(isns_proto::control::granted_period(&reply));
    Ok(Instant::now() + every)
}

/// Withdraws our Control node from the server (its provider is removed): SCNDereg, then DevDereg
/// of our entity, within [`GOODBYE_DEADLINE`] each; an error says what the server answered.
pub(crate) async fn withdraw(settings: IsnsSettings, options: IsnsOptions) -> Result<(), Error> {
    let server = settings.server.to_string();
    let node = control_node(&settings, None);
    let mut client = Client::new(server.clone(), options.client_config(&settings.source_name));
    let timed_out = || {
        Error::new(Hresult::from_win32(Win32Error::WSAETIMEDOUT.0))
            .about(server_subject(&server))
            .because(format!(
                "no answer within {} s while withdrawing the Control node",
                GOODBYE_DEADLINE.as_secs()
            ))
    };
    // Not registered for SCNs (or no longer): nothing to undo there.
    let _ = tokio::time::timeout(GOODBYE_DEADLINE, client.scn_deregister(&node)).await;
    tokio::time::timeout(GOODBYE_DEADLINE, client.deregister(&node))
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| client_error(&server, &e).because("withdrawing the Control node"))
}

/// Best effort, within [`GOODBYE_DEADLINE`]: no more SCNs, and our entity removed.
async fn goodbye(client: &mut Client, node: &ControlNode, scn: bool) {
    let _ = tokio::time::timeout(GOODBYE_DEADLINE, async {
        if scn {
            let _ = client.scn_deregister(node).await;
        }
        let _ = client.deregister(node).await;
    })
    .await;
}

fn holder<'a>(picture: &'a [SubSystemSnapshot], node: &str) -> Option<&'a SubSystemSnapshot> {
    picture.iter().find(|s| {
        s.targets
            .iter()
            .any(|t| t.iscsi_name.eq_ignore_ascii_case(node))
    })
}

/// What a node no longer being a target of `holder` asks for.
fn lost_target(holder: Option<&SubSystemSnapshot>) -> Option<WatchMessage> {
    match holder {
        Some(s) if s.targets.len() > 1 => Some(WatchMessage::Refresh(s.key.clone())),
        Some(_) => Some(WatchMessage::Reenumerate),
        None => None,
    }
}

/// The requests for the events of one SCN (the table in the module documentation), each once.
async fn requests_for(
    settings: &IsnsSettings,
    server: &str,
    client: &mut Client,
    ctx: &WatchContext,
    events: &[isns_client::ScnEvent],
) -> Result<Vec<WatchMessage>, Error> {
    let mut refresh: BTreeSet<String> = BTreeSet::new();
    let mut reenumerate = false;
    for ev in events {
        if ev.node.eq_ignore_ascii_case(&settings.source_name) {
            continue;
        }
        let picture = (ctx.picture)();
        let was = holder(&picture, &ev.node);
        let request = if ev.bitmap.contains(ScnBitmap::OBJECT_REMOVED) {
            lost_target(was)
        } else {
            let now = client.query_node(&ev.node).await.map_err(|e| {
                client_error(server, &e).because(format!("asking about {}", ev.node))
            })?;
            let node = now
                .as_ref()
                .and_then(|o| o.nodes.iter().find(|n| n.name == ev.node));
            match node {
                Some(n) => {
                    let is_target = n.node_type.is_some_and(|t| t.contains(NodeType::TARGET));
                    let entity = n.entity.as_deref();
                    let known = entity.and_then(|e| picture.iter().find(|s| s.key == e));
                    match (known, is_target, was) {
                        // It moved out of a subsystem we show: what it left changed too.
                        (_, _, Some(w)) if Some(w.key.as_str()) != entity => {
                            Some(WatchMessage::Reenumerate)
                        }
                        (Some(s), true, _) => Some(WatchMessage::Refresh(s.key.clone())),
                        (Some(_), false, Some(_)) => lost_target(was),
                        (None, true, _) => Some(WatchMessage::Reenumerate),
                        _ => None,
                    }
                }
                None => lost_target(was),
            }
        };
        match request {
            Some(WatchMessage::Refresh(k)) => {
                refresh.insert(k);
            }
            Some(WatchMessage::Reenumerate) => reenumerate = true,
            _ => {}
        }
    }
    Ok(if reenumerate {
        vec![WatchMessage::Reenumerate]
    } else {
        refresh.into_iter().map(WatchMessage::Refresh).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vds_model::{SubSystemStatus, TargetSnapshot};

    fn sub(key: &str, targets: &[&str]) -> SubSystemSnapshot {
        let mut s = SubSystemSnapshot::new(key, SubSystemStatus::Online);
        s.targets = targets
            .iter()
            .map(|t| TargetSnapshot {
                iscsi_name: (*t).into(),
                friendly_name: String::new(),
                chap_enabled: false,
                lun_count: 0,
                connected_initiators: Vec::new(),
                portal_groups: Vec::new(),
            })
            .collect();
        s
    }

    #[test]
    fn a_lost_target_refreshes_or_reenumerates() {
        let picture = vec![
            sub("host1", &["iqn.t:a", "iqn.t:b"]),
            sub("host2", &["iqn.t:c"]),
        ];
        assert!(matches!(
            lost_target(holder(&picture, "IQN.T:A")),
            Some(WatchMessage::Refresh(k)) if k == "host1"
        ));
        assert!(matches!(
            lost_target(holder(&picture, "iqn.t:c")),
            Some(WatchMessage::Reenumerate)
        ));
        assert!(lost_target(holder(&picture, "iqn.t:initiator")).is_none());
    }
}
