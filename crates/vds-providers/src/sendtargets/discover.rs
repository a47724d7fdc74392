//! The async half of the SendTargets provider: runs a subsystem's discoveries and probes
//! concurrently on the caller's runtime, bounded by the backend's semaphore, and hands the answers
//! to the pure [`super::merge`]. It also says what a client error means: for a status, in
//! [`classify`], and as a VDS code, in [`error_code`] — the one place each decision is made.

use std::sync::Arc;

use iscsi_client::{DiscoveryOptions, ErrorKind, Host, LoginFailureReason};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::debug;
use vds_model::{Error, Hresult, SubSystemSnapshot, Subject, Win32Error};

use super::merge::{self, Failure, FailureClass, Outcome, ProbeTarget, Probes};
use super::{Configured, DiscoveryPortal, MAX_PROBES_PER_SUBSYSTEM};

/// The HRESULT a VDS caller sees for what the iSCSI client reports (the table is in the module
/// documentation of [`super`]).
pub fn error_code(kind: &ErrorKind) -> Hresult {
    match kind {
        ErrorKind::Resolve(_) => Hresult::from_win32(Win32Error::WSAHOST_NOT_FOUND.0),
        ErrorKind::Connect(e) | ErrorKind::Io(e) => Hresult::from_io_error(e),
        ErrorKind::Timeout { .. } => Hresult::from_win32(Win32Error::WSAETIMEDOUT.0),
        ErrorKind::Closed { .. } => Hresult::from_win32(Win32Error::WSAECONNRESET.0),
        ErrorKind::Login(_)
        | ErrorKind::AuthenticationFailed
        | ErrorKind::MutualAuthenticationFailed(_)
        | ErrorKind::RedirectLoop(_)
        | ErrorKind::TooManyRedirects { .. } => Hresult::VDS_E_ISCSI_LOGIN_FAILED,
        ErrorKind::AnswerTooLarge { .. }
        | ErrorKind::TooManyPdus { .. }
        | ErrorKind::Protocol(_) => Hresult::VDS_E_BAD_PROVIDER_DATA,
        ErrorKind::InvalidOptions(_) => Hresult::E_INVALIDARG,
        _ => Hresult::E_FAIL,
    }
}

/// One SendTargets discovery of `portal` (no store, no model): what `vdsadm discover` runs. The
/// error is about the portal and carries the phase and the cause.
pub async fn discover_portal(
    portal: &DiscoveryPortal,
    options: &DiscoveryOptions,
) -> Result<iscsi_client::DiscoveryResult, Error> {
    iscsi_client::discover(&portal.host, portal.port, options)
        .await
        .map_err(|e| {
            let mut cause = format!("{}: {}", e.phase(), e.kind());
            if e.portal() != portal.to_string() {
                cause = format!("redirected to {}: {cause}", e.portal());
            }
            Error::new(error_code(e.kind()))
                .about(Subject::Other(format!("portal {portal}")))
                .because(cause)
        })
}

/// What a client error means for the status of the portal it happened on, and the message that
/// says so (without the portal, which the caller prefixes; never a secret).
pub(crate) fn classify(e: &iscsi_client::Error, asked: &str) -> Failure {
    let mut f = classify_kind(e);
    // After a login redirect, the portal that failed is not the one asked: say which it was.
    if e.portal() != asked {
        f.cause = format!("redirected to {}: {}", e.portal(), f.cause);
    }
    f
}

fn classify_kind(e: &iscsi_client::Error) -> Failure {
    let (class, cause) = match e.kind() {
        ErrorKind::Resolve(_)
        | ErrorKind::Connect(_)
        | ErrorKind::Timeout { .. }
        | ErrorKind::Io(_)
        | ErrorKind::Closed { .. } => (FailureClass::Unreachable, e.kind().to_string()),
        ErrorKind::AuthenticationFailed => (
            FailureClass::Refused,
            "authentication failure (login status 0x0201)".to_owned(),
        ),
        ErrorKind::MutualAuthenticationFailed(_) => (FailureClass::Refused, e.kind().to_string()),
        ErrorKind::Login(f) => {
            let class = match f.reason() {
                LoginFailureReason::AuthenticationFailure
                | LoginFailureReason::AuthorizationFailure => FailureClass::Refused,
                LoginFailureReason::ServiceUnavailable | LoginFailureReason::OutOfResources => {
                    FailureClass::Busy
                }
                _ => FailureClass::Broken,
            };
            (
                class,
                format!(
                    "{} (login status 0x{:02x}{:02x})",
                    f.reason(),
                    f.class,
                    f.detail
                ),
            )
        }
        _ => (FailureClass::Broken, e.kind().to_string()),
    };
    Failure { class, cause }
}

/// What one subsystem's discoveries and probes made: its picture, or, when no discovery portal
/// answered, the answers waiting for the previous picture (the merge keeps its objects then).
pub(crate) enum Answer {
    Picture(SubSystemSnapshot),
    Unanswered {
        configured: Arc<Configured>,
        outcomes: Vec<Outcome>,
    },
}

impl Answer {
    /// The picture, from `previous` when no discovery portal answered.
    pub(crate) fn finish(self, previous: Option<&SubSystemSnapshot>) -> SubSystemSnapshot {
        match self {
            Answer::Picture(p) => p,
            Answer::Unanswered {
                configured,
                outcomes,
            } => merge::collect(&*configured, &outcomes).merge(&Probes::new(), previous),
        }
    }
}

/// One subsystem: every discovery portal at once, then the probes, then the merge.
pub(crate) async fn subsystem(
    configured: &Arc<Configured>,
    previous: Option<&SubSystemSnapshot>,
    permits: &Arc<Semaphore>,
) -> SubSystemSnapshot {
    answer(configured, permits).await.finish(previous)
}

/// [`subsystem`] up to where the previous picture would be needed.
pub(crate) async fn answer(configured: &Arc<Configured>, permits: &Arc<Semaphore>) -> Answer {
    let config = &**configured;
    let mut discoveries = JoinSet::new();
    for (i, dp) in config.portals.iter().enumerate() {
        let configured = configured.clone();
        let permits = permits.clone();
        let host = dp.host.clone();
        let port = dp.port;
        discoveries.spawn(async move {
            let outcome = discover_one(&configured, &host, port, &permits).await;
            (i, outcome)
        });
    }
    let mut outcomes: Vec<Outcome> = vec![
        Outcome::Failed(Failure {
            class: FailureClass::Broken,
            cause: "discovery task failed".into(),
        });
        config.portals.len()
    ];
    while let Some(joined) = discoveries.join_next().await {
        if let Ok((i, outcome)) = joined {
            if let Some(slot) = outcomes.get_mut(i) {
                *slot = outcome;
            }
        }
    }
    let collected = merge::collect(config, &outcomes);
    if !collected.answered() {
        drop(collected);
        return Answer::Unanswered {
            configured: configured.clone(),
            outcomes,
        };
    }
    let probes: Probes = probe_portals(
        &config.name,
        collected.to_probe(),
        &configured.options,
        permits,
    )
    .await
    .into_iter()
    .collect();
    Answer::Picture(collected.merge(&probes, None))
}

async fn discover_one(
    configured: &Configured,
    host: &Host,
    port: u16,
    permits: &Semaphore,
) -> Outcome {
    let subsystem = configured.name.as_str();
    let _permit = permits.acquire().await;
    debug!(subsystem, portal = %format_args!("{host}:{port}"), "SendTargets discovery");
    match iscsi_client::discover(host, port, &configured.options).await {
        Ok(found) => {
            debug!(
                subsystem,
                portal = %format_args!("{host}:{port}"),
                connected_to = %found.connected_to,
                targets = found.targets.len(),
                portal_group_tag = ?found.portal_group_tag,
                elapsed = ?found.elapsed,
                "SendTargets answered"
            );
            Outcome::Answered {
                targets: found.targets,
                portal_group_tag: found.portal_group_tag,
            }
        }
        Err(e) => {
            debug!(subsystem, error = %e, "SendTargets discovery failed");
            Outcome::Failed(classify(&e, &format!("{host}:{port}")))
        }
    }
}

/// Probes `portals` concurrently, each once a permit of `permits` is free, and says for each
/// (by its key) what its status is. At most [`MAX_PROBES_PER_SUBSYSTEM`] are probed, in order:
/// the addresses come from the array (or a directory), so this bounds the connections it can make
/// us open; the rest get no answer (`UNKNOWN`), and a warning says so.
pub(crate) async fn probe_portals(
    subsystem: &str,
    portals: Vec<ProbeTarget>,
    options: &DiscoveryOptions,
    permits: &Semaphore,
) -> Vec<(String, Result<(), Failure>)> {
    if portals.len() > MAX_PROBES_PER_SUBSYSTEM {
        tracing::warn!(
            subsystem,
            portals = portals.len(),
            probed = MAX_PROBES_PER_SUBSYSTEM,
            "more portals than are probed; the rest stay UNKNOWN"
        );
    }
    let runs = portals
        .into_iter()
        .take(MAX_PROBES_PER_SUBSYSTEM)
        .map(|t| async move {
            let result = probe_portal(subsystem, &t.host, t.port, options, permits).await;
            (t.key, result)
        });
    futures_util::future::join_all(runs).await
}

/// Probes one portal (a discovery login and logout) once a permit is free, and says what its
/// status is: `Ok` for `ONLINE`, else the failure with its class ([`Failure`]). The one probe of
/// every provider that reports portal status this way (SendTargets, iSNS).
async fn probe_portal(
    subsystem: &str,
    host: &Host,
    port: u16,
    options: &DiscoveryOptions,
    permits: &Semaphore,
) -> Result<(), Failure> {
    let _permit = permits.acquire().await;
    debug!(subsystem, portal = %format_args!("{host}:{port}"), "probing portal");
    match iscsi_client::probe(host, port, options).await {
        Ok(p) => {
            debug!(subsystem, portal = %format_args!("{host}:{port}"), elapsed = ?p.elapsed, "portal answered");
            Ok(())
        }
        Err(e) => {
            debug!(subsystem, error = %e, "portal probe failed");
            Err(classify(&e, &format!("{host}:{port}")))
        }
    }
}

#[cfg(test)]
mod tests {
    //! [`error_code`] against the table in the module documentation of `sendtargets`, one row at a
    //! time, with every `ErrorKind` built the way the client builds it. The expected codes are
    //! written as the table writes them, so a change to either shows here.

    use std::io;
    use std::net::Ipv4Addr;

    use iscsi_client::{Deadline, LoginFailure, Phase, TargetAddress};
    use iscsi_proto::{ApiMisuse, InvalidPdu, Limit, PeerMisbehaved};

    use super::*;

    const PHASES: [Phase; 5] = [
        Phase::Resolve,
        Phase::Connect,
        Phase::Login,
        Phase::SendTargets,
        Phase::Logout,
    ];

    fn io_error(kind: io::ErrorKind) -> Arc<io::Error> {
        Arc::new(io::Error::new(kind, "from the test"))
    }

    fn login(class: u8, detail: u8) -> LoginFailure {
        LoginFailure { class, detail }
    }

    fn code(kind: ErrorKind) -> u32 {
        error_code(&kind).code()
    }

    #[test]
    fn resolve_is_host_not_found() {
        assert_eq!(
            code(ErrorKind::Resolve(io_error(io::ErrorKind::NotFound))),
            0x8007_2AF9
        );
        // Whatever the resolver said: the name did not become an address.
        assert_eq!(
            code(ErrorKind::Resolve(io_error(io::ErrorKind::Other))),
            0x8007_2AF9
        );
    }

    #[test]
    fn connect_and_io_errors_are_the_winsock_code_of_the_io_error() {
        let rows = [
            (io::ErrorKind::ConnectionRefused, 0x8007_274D), // WSAECONNREFUSED 10061
            (io::ErrorKind::HostUnreachable, 0x8007_2751),   // WSAEHOSTUNREACH 10065
            (io::ErrorKind::NetworkUnreachable, 0x8007_2743), // WSAENETUNREACH 10051
            (io::ErrorKind::ConnectionReset, 0x8007_2746),   // WSAECONNRESET 10054
            (io::ErrorKind::TimedOut, 0x8007_274C),          // WSAETIMEDOUT 10060
        ];
        for (kind, expected) in rows {
            assert_eq!(
                code(ErrorKind::Connect(io_error(kind))),
                expected,
                "Connect({kind:?})"
            );
            assert_eq!(
                code(ErrorKind::Io(io_error(kind))),
                expected,
                "Io({kind:?})"
            );
            // The one mapping of io errors, not a second table.
            assert_eq!(
                error_code(&ErrorKind::Io(io_error(kind))),
                Hresult::from_io_error(&io::Error::from(kind))
            );
        }
    }

    #[test]
    fn every_deadline_in_every_phase_is_a_timeout() {
        for phase in PHASES {
            for deadline in [Deadline::Connect, Deadline::Pdu, Deadline::Overall] {
                assert_eq!(
                    code(ErrorKind::Timeout { phase, deadline }),
                    0x8007_274C,
                    "{deadline} during {phase}"
                );
            }
        }
    }

    #[test]
    fn a_target_that_hangs_up_early_is_a_reset() {
        for phase in PHASES {
            assert_eq!(code(ErrorKind::Closed { phase }), 0x8007_2746, "{phase}");
        }
    }

    #[test]
    fn refusals_and_redirect_trouble_are_login_failures() {
        let login_failed = Hresult::VDS_E_ISCSI_LOGIN_FAILED.code();
        assert_eq!(login_failed, 0x8004_2708);
        // Every status class a login can be refused with, busy ones included: the status decides
        // the portal's status (see `classify`), not the code.
        for (class, detail) in [(2, 0), (2, 2), (2, 3), (3, 0), (3, 1), (3, 2), (7, 7)] {
            assert_eq!(
                code(ErrorKind::Login(login(class, detail))),
                login_failed,
                "0x{class:02x}{detail:02x}"
            );
        }
        assert_eq!(code(ErrorKind::AuthenticationFailed), login_failed);
        for misbehaved in [
            PeerMisbehaved::TargetAuthenticationFailed("CHAP_R does not match"),
            PeerMisbehaved::ChapChallengeReflected,
            PeerMisbehaved::AuthenticationSkipped,
        ] {
            assert_eq!(
                code(ErrorKind::MutualAuthenticationFailed(misbehaved.into())),
                login_failed
            );
        }
        let back = TargetAddress {
            host: Host::Ipv4(Ipv4Addr::LOCALHOST),
            port: 3260,
            tag: None,
        };
        assert_eq!(code(ErrorKind::RedirectLoop(back)), login_failed);
        assert_eq!(code(ErrorKind::TooManyRedirects { max: 8 }), login_failed);
    }

    #[test]
    fn garbage_and_exceeded_caps_are_bad_provider_data() {
        let bad_data = Hresult::VDS_E_BAD_PROVIDER_DATA.code();
        assert_eq!(bad_data, 0x8004_2441);
        let garbage: iscsi_proto::Error = InvalidPdu::Truncated { needed: 48, got: 3 }.into();
        assert_eq!(code(ErrorKind::Protocol(garbage)), bad_data);
        let violation: iscsi_proto::Error = PeerMisbehaved::MissingKey("TargetName").into();
        assert_eq!(code(ErrorKind::Protocol(violation)), bad_data);
        let rejected = iscsi_proto::Error::Rejected {
            reason: iscsi_proto::wire::RejectReason::ProtocolError,
        };
        assert_eq!(code(ErrorKind::Protocol(rejected)), bad_data);
        assert_eq!(code(ErrorKind::AnswerTooLarge { max: 1 << 24 }), bad_data);
        assert_eq!(code(ErrorKind::TooManyPdus { max: 4096 }), bad_data);
    }

    #[test]
    fn invalid_options_are_invalid_arguments() {
        let misuse: iscsi_proto::Error = ApiMisuse::DataSegmentTooLong { len: 1 << 24 }.into();
        assert_eq!(code(ErrorKind::InvalidOptions(misuse)), 0x8007_0057);
    }

    /// The kinds the client makes from the session's errors (`ErrorKind::from_proto`) land in the
    /// rows above, so a proto error can only reach a VDS caller as one of the documented codes.
    #[test]
    fn proto_errors_sorted_by_the_client_get_their_documented_code() {
        let rows: Vec<(iscsi_proto::Error, Hresult)> = vec![
            (login(2, 1).into(), Hresult::VDS_E_ISCSI_LOGIN_FAILED),
            (login(3, 1).into(), Hresult::VDS_E_ISCSI_LOGIN_FAILED),
            (
                PeerMisbehaved::ChapChallengeReflected.into(),
                Hresult::VDS_E_ISCSI_LOGIN_FAILED,
            ),
            (
                Limit::Pdus { max: 4096 }.into(),
                Hresult::VDS_E_BAD_PROVIDER_DATA,
            ),
            (
                Limit::AnswerBytes { max: 1 << 24 }.into(),
                Hresult::VDS_E_BAD_PROVIDER_DATA,
            ),
            (
                PeerMisbehaved::LogoutFailed(2).into(),
                Hresult::VDS_E_BAD_PROVIDER_DATA,
            ),
            (
                ApiMisuse::SessionOver("failed").into(),
                Hresult::E_INVALIDARG,
            ),
        ];
        for (proto, expected) in rows {
            let shown = proto.to_string();
            assert_eq!(
                error_code(&ErrorKind::from_proto(proto)),
                expected,
                "{shown}"
            );
        }
    }
}
