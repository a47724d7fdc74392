//! The tgt provider: one tgtd (the Linux user-space SCSI target, `tgt` 1.0.85) is one subsystem,
//! managed over tgtd's own management socket the way `tgtadm` does (through `tgt-client`), never by
//! running `tgtadm`.
//!
//! The subsystem's key is the provider's name; its identification is the socket path. The pure
//! half (`picture`: tgtd's answers and vds's held state → a snapshot; the names vds makes up) is
//! apart from this driver, which asks tgtd, changes it, and keeps the state tgtd cannot hold
//! (`state`: portals taken offline, aliases) in the provider's state file.
//!
//! # What the picture says
//!
//! | object | from |
//! |---|---|
//! | portals | every portal tgtd listens on (`ONLINE`), and every portal vds took offline (`OFFLINE`) or could not bring back (`FAILED`, why in the subsystem's detail); IPv4 first, then by address and port |
//! | targets | tgtd's targets in tid order; LUN count without LUN 0 (the controller); CHAP when an incoming account is bound; the alias vds keeps; connected initiators from the I_T nexuses, each once |
//! | portal groups | one per target, tag 1, holding every portal: tgt has no per-target portal groups and every portal has TPGT 1 |
//! | subsystem | `ONLINE` when tgtd answers (`DEGRADED` health while a portal is `FAILED`); flags `SUPPORTS_AUTH_CHAP`, `SUPPORTS_AUTH_MUTUAL_CHAP` |
//!
//! When tgtd cannot be asked, the subsystem keeps its previous portals and targets and gets:
//!
//! | what the client met | status | detail |
//! |---|---|---|
//! | no socket, connection refused, a connect error, a deadline | `OFFLINE` (portals `OFFLINE`) | the client's error, with the HRESULT a change would get |
//! | permission denied at connect, or tgtd closing without a reply (its peer-credential check) | `FAILED` (portals `UNKNOWN`) | `E_ACCESSDENIED (0x80070005): …` |
//! | a reply cut short, over the cap, that does not decode or parse | — the refresh fails with `VDS_E_BAD_PROVIDER_DATA` and the cached picture stays as it was | |
//!
//! # Changes
//!
//! Every change reads tgtd first (a cached picture may be stale), acts, and reads it again for the
//! picture it commits. State is written before tgtd is changed where a crash between the two must
//! not lose it (a portal taken offline is remembered first).
//!
//! | VDS method | on tgtd | codes beyond the model's |
//! |---|---|---|
//! | `SetStatus(OFFLINE)` | delete the portal (sessions on it stay); vds holds it `OFFLINE` | |
//! | `SetStatus(ONLINE)` | new portal; on refusal the portal is `FAILED` with why (learnt by binding the address briefly) | `HRESULT_FROM_WIN32(WSAEADDRINUSE)`, `…(WSAEADDRNOTAVAIL)`, else `VDS_E_PROVIDER_FAILURE`; the picture is committed |
//! | `CreateTarget` | new target on the next tid, named as asked or [`generated_name`]; no ACL (invisible to SendTargets until access is granted) | `VDS_E_INVALID_ISCSI_TARGET_NAME` (characters tgtd refuses), `VDS_E_NAME_NOT_UNIQUE` |
//! | `Delete` (target) | delete without force, then vds's accounts of the target | `VDS_E_ASSOCIATED_LUNS_EXIST`, `VDS_E_DEVICE_IN_USE` (logged-in initiators: tgtd's `TARGET_ACTIVE`), `VDS_E_OBJECT_DELETED` |
//! | `SetFriendlyName` | nothing: vds keeps the alias (tgtd has none, and sends none at login) | |
//! | `CreatePortalGroup` | nothing | `VDS_S_ALREADY_EXISTS` with group 1 |
//! | `AddPortal`, `RemovePortal`, group `Delete` | nothing | `VDS_E_NOT_SUPPORTED` |
//! | `SetSharedSecret` | incoming account [`incoming_user`] bound to the target; replaced with CHAP required throughout; cleared by deleting it | `VDS_E_INITIATOR_SPECIFIC_NOT_SUPPORTED`, `VDS_E_ISCSI_CHAP_SECRET` |
//! | `RememberInitiatorSharedSecret` | outgoing account [`outgoing_user`] bound to the target (tgt has one per target, for every initiator) | `VDS_E_ISCSI_CHAP_SECRET` |
//!
//! # HRESULTs of the client's errors
//!
//! [`error_code`] is the one table:
//!
//! | `tgt_client::ErrorKind` | HRESULT |
//! |---|---|
//! | `SocketMissing`, `ConnectionRefused` | `HRESULT_FROM_WIN32(WSAECONNREFUSED)` 0x8007274D (tgtd cannot be reached) |
//! | `PermissionDenied`, `ClosedWithoutReply` | `E_ACCESSDENIED` 0x80070005 |
//! | `Connect(io)`, `Io(io)` | `Hresult::from_io_error` |
//! | `Timeout` | `HRESULT_FROM_WIN32(WSAETIMEDOUT)` 0x8007274C |
//! | `ReplyCutShort`, `ReplyTooLarge`, `InvalidReply`, `Malformed` | `VDS_E_BAD_PROVIDER_DATA` 0x80042441 |
//! | `Refused` (a value tgtd would choke on; nothing sent) | `E_INVALIDARG` |
//! | `Tgtd(code)` | per operation (table above); otherwise `VDS_E_PROVIDER_FAILURE` 0x80042442 |

mod kind;
mod picture;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tgt_client::{
    AccountBinding, AccountDirection, AccountScope, Client, ClientConfig, ErrorCode, ErrorKind,
};
use vds_model::{
    Applied, Created, Error, Hresult, HwProviderType, IscsiPortalStatus, Mutation, ProviderBackend,
    ProviderInfo, SubSystemSnapshot, SubSystemStatus, Subject, Win32Error,
};
use vds_secret::Secret;

use crate::KindState;

pub use kind::{SOCKET_SETTING, TgtKind};
pub use picture::{
    GENERATED_NAME_PREFIX, PORTAL_GROUP_TAG, generated_name, incoming_user, outgoing_user,
};

use picture::{Identity, Observed, picture, swap_user, unreachable};
use state::{Held, TgtState};

/// How many times `CreateTarget` tries the next tid when another client took it meanwhile.
const CREATE_ATTEMPTS: u32 = 8;

/// The HRESULT of a client error (see the module documentation).
pub fn error_code(kind: &ErrorKind) -> Hresult {
    match kind {
        ErrorKind::SocketMissing | ErrorKind::ConnectionRefused => {
            Hresult::from_win32(Win32Error::WSAECONNREFUSED.0)
        }
        ErrorKind::PermissionDenied | ErrorKind::ClosedWithoutReply => Hresult::E_ACCESSDENIED,
        ErrorKind::Connect(e) | ErrorKind::Io(e) => Hresult::from_io_error(e),
        ErrorKind::Timeout { .. } => Hresult::from_win32(Win32Error::WSAETIMEDOUT.0),
        ErrorKind::ReplyCutShort { .. }
        | ErrorKind::ReplyTooLarge { .. }
        | ErrorKind::InvalidReply(_)
        | ErrorKind::Malformed(_) => Hresult::VDS_E_BAD_PROVIDER_DATA,
        ErrorKind::Refused(_) => Hresult::E_INVALIDARG,
        _ => Hresult::VDS_E_PROVIDER_FAILURE,
    }
}

/// The error for a client error: its code and the client's words (which name the socket).
fn client_error(e: &tgt_client::Error) -> Error {
    Error::new(error_code(e.kind())).because(e.to_string())
}

/// What a failure to ask tgtd means for the subsystem.
enum Reach {
    /// tgtd is not there to answer.
    Offline,
    /// tgtd is there and refuses us.
    Denied,
    /// It answered with something unusable: the refresh fails, the cache stays.
    Bad,
}

fn reach(kind: &ErrorKind) -> Reach {
    match kind {
        ErrorKind::SocketMissing
        | ErrorKind::ConnectionRefused
        | ErrorKind::Connect(_)
        | ErrorKind::Timeout { .. } => Reach::Offline,
        ErrorKind::PermissionDenied | ErrorKind::ClosedWithoutReply => Reach::Denied,
        _ => Reach::Bad,
    }
}

/// The backend of one tgt provider. See the module documentation.
pub struct TgtBackend {
    name: String,
    socket: String,
    client: Client,
    state: Arc<dyn KindState>,
}

/// What a change did, before the picture is taken.
struct Outcome {
    created: Option<Created>,
    code: Hresult,
    failure: Option<Error>,
}

impl Outcome {
    fn done() -> Outcome {
        Outcome {
            created: None,
            code: Hresult::S_OK,
            failure: None,
        }
    }

    fn failed(e: Error) -> Outcome {
        Outcome {
            created: None,
            code: e.code(),
            failure: Some(e),
        }
    }
}

impl TgtBackend {
    /// A backend for provider `name` talking to tgtd with `config` (its socket, deadlines and reply
    /// cap), keeping its own state in `state`.
    pub fn new(name: impl Into<String>, config: ClientConfig, state: Arc<dyn KindState>) -> Self {
        TgtBackend {
            name: name.into(),
            socket: config.socket.display().to_string(),
            client: Client::new(config),
            state,
        }
    }

    /// The management socket it talks to.
    pub fn socket(&self) -> PathBuf {
        self.client.config().socket.clone()
    }

    fn identity(&self) -> Identity<'_> {
        Identity {
            key: &self.name,
            socket: &self.socket,
        }
    }

    fn subject(&self) -> Subject {
        Subject::Subsystem(self.name.clone())
    }

    async fn observe(&self) -> Result<Observed, tgt_client::Error> {
        let portals = self.client.show_portals().await?;
        let targets = self.client.show_targets().await?;
        Ok(Observed {
            portals: portals.into_iter().map(|p| p.addr).collect(),
            targets,
        })
    }

    async fn observe_or_fail(&self) -> Result<Observed, Error> {
        self.observe().await.map_err(|e| client_error(&e))
    }

    fn read_state(&self) -> Result<TgtState, Error> {
        TgtState::decode(self.state.read()?.as_deref())
    }

    fn write_state(&self, state: &TgtState) -> Result<(), Error> {
        self.state.write(&state.encode()?)
    }

    /// The subsystem now. `fresh`: the state may be started afresh when it cannot be read (a
    /// reenumerate, which does not trust what was kept).
    async fn current(
        &self,
        previous: Option<&SubSystemSnapshot>,
        fresh: bool,
    ) -> Result<SubSystemSnapshot, Error> {
        let seen = match self.observe().await {
            Ok(seen) => seen,
            Err(e) => {
                let code = Error::new(error_code(e.kind()));
                let detail = format!("{} ({}): {e}", code.code_name(), code.code_hex());
                tracing::info!(provider = %self.name, error = %e, "tgtd does not answer");
                return match reach(e.kind()) {
                    Reach::Offline => Ok(unreachable(
                        &self.identity(),
                        previous,
                        SubSystemStatus::Offline,
                        detail,
                    )),
                    Reach::Denied => Ok(unreachable(
                        &self.identity(),
                        previous,
                        SubSystemStatus::Failed,
                        detail,
                    )),
                    Reach::Bad => Err(client_error(&e)),
                };
            }
        };
        let _lock = self.state.lock()?;
        let (mut state, reset) = match self.read_state() {
            Ok(s) => (s, false),
            Err(e) if fresh => {
                tracing::warn!(provider = %self.name, error = %e, "starting the state afresh");
                (TgtState::new(), true)
            }
            Err(e) => return Err(e),
        };
        let names = seen.targets.iter().map(|t| t.name.as_str());
        if state.prune(&seen.portals, names) || reset {
            self.write_state(&state)?;
        }
        Ok(picture(&self.identity(), &seen, &state))
    }

    /// A tgtd refusal during a CHAP change.
    fn chap_refused(e: &tgt_client::Error, what: &str) -> Error {
        match e.tgtd_code() {
            Some(code) => Error::new(Hresult::VDS_E_ISCSI_CHAP_SECRET)
                .because(format!("tgtd refused to {what}: {code}")),
            None => client_error(e),
        }
    }

    /// Deletes account `user`; one that does not exist is fine.
    async fn delete_account(&self, user: &str) -> Result<(), Error> {
        match self.client.delete_account(user).await {
            Ok(()) => Ok(()),
            Err(e) if e.tgtd_code() == Some(ErrorCode::NoUser) => Ok(()),
            Err(e) => Err(Self::chap_refused(&e, &format!("delete account {user:?}"))),
        }
    }

    async fn new_account(&self, user: &str, secret: &Secret) -> Result<(), Error> {
        self.client
            .new_account(user, secret)
            .await
            .map_err(|e| Self::chap_refused(&e, &format!("create account {user:?}")))
    }

    async fn bind(&self, user: &str, tid: u32, direction: AccountDirection) -> Result<(), Error> {
        let binding = AccountBinding {
            scope: AccountScope::Target(tid),
            direction,
        };
        self.client
            .bind_account(user, binding)
            .await
            .map_err(|e| Self::chap_refused(&e, &format!("bind account {user:?}")))
    }

    /// Checks a secret against what tgtd can hold and RFC 7143's limits, before anything is sent.
    fn check_secret(user: &str, secret: &Secret) -> Result<(), Error> {
        iscsi_proto::limits::check_chap_secret(secret.expose())
            .map_err(|e| Error::new(Hresult::VDS_E_ISCSI_CHAP_SECRET).because(e.to_string()))?;
        tgt_proto::Request::NewAccount {
            user: user.to_string(),
            password: secret.clone(),
        }
        .validate()
        .map_err(|e| Error::new(Hresult::VDS_E_ISCSI_CHAP_SECRET).because(e.to_string()))
    }

    async fn set_portal_status(
        &self,
        seen: &Observed,
        state: &mut TgtState,
        portal: SocketAddr,
        status: IscsiPortalStatus,
    ) -> Result<Outcome, Error> {
        let live = seen.portals.contains(&portal);
        if status == IscsiPortalStatus::Offline {
            let before = state.clone();
            state.hold(portal, Held::Offline, None);
            // Remembered first: a crash after the delete must not lose the portal.
            self.write_state(state)?;
            if live {
                if let Err(e) = self.client.delete_portal(portal).await {
                    // tgtd may have lost it meanwhile: then it is offline as asked.
                    let gone = self
                        .observe()
                        .await
                        .is_ok_and(|now| !now.portals.contains(&portal));
                    if !gone {
                        *state = before;
                        self.write_state(state)?;
                        return Err(client_error(&e));
                    }
                }
            }
            return Ok(Outcome::done());
        }
        if live {
            state.release(portal);
            self.write_state(state)?;
            return Ok(Outcome::done());
        }
        match self.client.new_portal(portal).await {
            Ok(()) => {
                state.release(portal);
                self.write_state(state)?;
                Ok(Outcome::done())
            }
            Err(e) if e.tgtd_code() == Some(ErrorCode::InvalidRequest) => {
                // tgtd says only "invalid request" (its log says why): bind the address briefly
                // to learn the reason, as the machine is tgtd's.
                let (code, reason) = match std::net::TcpListener::bind(portal) {
                    Err(io) => (Hresult::from_io_error(&io), format!("cannot listen: {io}")),
                    Ok(_) => (
                        Hresult::VDS_E_PROVIDER_FAILURE,
                        "tgtd refused to listen there (INVALID_REQUEST; tgtd's log says why)"
                            .to_string(),
                    ),
                };
                state.hold(portal, Held::Failed, Some(reason.clone()));
                self.write_state(state)?;
                Ok(Outcome::failed(Error::new(code).because(format!(
                    "tgtd could not listen on {portal}: {reason}"
                ))))
            }
            Err(e) => Err(client_error(&e)),
        }
    }

    async fn create_target(
        &self,
        state: &mut TgtState,
        asked: Option<&str>,
        alias: &str,
    ) -> Result<Outcome, Error> {
        if let Some(name) = asked {
            tgt_proto::Request::NewTarget {
                tid: 1,
                name: name.to_string(),
            }
            .validate()
            .map_err(|e| {
                Error::new(Hresult::VDS_E_INVALID_ISCSI_TARGET_NAME).because(e.to_string())
            })?;
        }
        let mut seen = self.observe_or_fail().await?;
        for _ in 0..CREATE_ATTEMPTS {
            let tid = seen.next_tid();
            let name = match asked {
                Some(n) => n.to_string(),
                None => generated_name(&self.name, tid),
            };
            if let Some(t) = seen.target(&name) {
                if asked.is_some() {
                    return Err(Error::new(Hresult::VDS_E_NAME_NOT_UNIQUE)
                        .because(format!("tgtd has target {} named {:?}", t.tid, t.name)));
                }
                // A generated name someone used by hand: the tid after it.
                seen.targets.push(tgt_proto::show::Target {
                    tid,
                    ..tgt_proto::show::Target::default()
                });
                continue;
            }
            match self.client.new_target(tid, &name).await {
                Ok(()) => {
                    if !alias.is_empty() {
                        state.aliases.insert(name.clone(), alias.to_string());
                        self.write_state(state)?;
                    }
                    return Ok(Outcome {
                        created: Some(Created::Target(name)),
                        ..Outcome::done()
                    });
                }
                // The tid or the name was taken meanwhile: look again.
                Err(e) if e.tgtd_code() == Some(ErrorCode::TargetExist) => {
                    seen = self.observe_or_fail().await?;
                }
                Err(e) if e.tgtd_code() == Some(ErrorCode::InvalidRequest) => {
                    return Err(Error::new(Hresult::VDS_E_INVALID_ISCSI_TARGET_NAME)
                        .because(format!("tgtd refused the name {name:?}: {e}")));
                }
                Err(e) => return Err(client_error(&e)),
            }
        }
        Err(Error::new(Hresult::VDS_E_PROVIDER_FAILURE).because(format!(
            "another client took every tid tried ({CREATE_ATTEMPTS} attempts)"
        )))
    }

    async fn delete_target(&self, state: &mut TgtState, name: &str) -> Result<Outcome, Error> {
        let seen = self.observe_or_fail().await?;
        let Some(t) = seen.target(name) else {
            return Ok(Outcome::failed(gone(name)));
        };
        let luns = t.luns.iter().filter(|l| l.number != 0).count();
        if luns > 0 {
            return Ok(Outcome::failed(
                Error::new(Hresult::VDS_E_ASSOCIATED_LUNS_EXIST)
                    .because(format!("tgtd shows {luns} LUN(s)")),
            ));
        }
        if !t.nexuses.is_empty() {
            return Ok(Outcome::failed(in_use(t)));
        }
        let (tid, name) = (t.tid, t.name.clone());
        match self.client.delete_target(tid, false).await {
            Ok(()) => {}
            Err(e) if e.tgtd_code() == Some(ErrorCode::TargetActive) => {
                let now = self.observe_or_fail().await?;
                return Ok(Outcome::failed(match now.target(&name) {
                    Some(t) => in_use(t),
                    None => gone(&name),
                }));
            }
            Err(e) if e.tgtd_code() == Some(ErrorCode::NoTarget) => {
                return Ok(Outcome::failed(gone(&name)));
            }
            Err(e) => return Err(client_error(&e)),
        }
        // vds's accounts of the target would outlive it in tgtd.
        self.delete_account(&incoming_user(&name)).await?;
        self.delete_account(&outgoing_user(&name)).await?;
        self.delete_account(&swap_user(&name)).await?;
        if state.aliases.remove(&name).is_some() {
            self.write_state(state)?;
        }
        Ok(Outcome::done())
    }

    async fn set_alias(
        &self,
        state: &mut TgtState,
        name: &str,
        alias: &str,
    ) -> Result<Outcome, Error> {
        let seen = self.observe_or_fail().await?;
        let Some(t) = seen.target(name) else {
            return Ok(Outcome::failed(gone(name)));
        };
        if alias.is_empty() {
            state.aliases.remove(&t.name);
        } else {
            state.aliases.insert(t.name.clone(), alias.to_string());
        }
        self.write_state(state)?;
        Ok(Outcome::done())
    }

    async fn set_shared_secret(
        &self,
        name: &str,
        secret: Option<&Secret>,
        initiator: Option<&str>,
    ) -> Result<Outcome, Error> {
        if let Some(i) = initiator {
            return Err(
                Error::new(Hresult::VDS_E_INITIATOR_SPECIFIC_NOT_SUPPORTED).because(format!(
                    "tgt keeps one secret per target (an account named after it); a secret for \
                     initiator {i:?} alone cannot be set"
                )),
            );
        }
        let seen = self.observe_or_fail().await?;
        let Some(t) = seen.target(name) else {
            return Ok(Outcome::failed(gone(name)));
        };
        let (tid, user) = (t.tid, incoming_user(&t.name));
        let Some(secret) = secret else {
            self.delete_account(&user).await?;
            return Ok(Outcome::done());
        };
        Self::check_secret(&user, secret)?;
        let accounts = self
            .client
            .show_accounts()
            .await
            .map_err(|e| client_error(&e))?;
        if !accounts.contains(&user) {
            self.new_account(&user, secret).await?;
            if let Err(e) = self.bind(&user, tid, AccountDirection::Incoming).await {
                let _ = self.delete_account(&user).await;
                return Err(e);
            }
            return Ok(Outcome::done());
        }
        // tgtd cannot change a password: the account is made again. A second account with the
        // new secret is bound first, so the target requires CHAP throughout.
        let swap = swap_user(&t.name);
        self.delete_account(&swap).await?;
        self.new_account(&swap, secret).await?;
        self.bind(&swap, tid, AccountDirection::Incoming).await?;
        self.delete_account(&user).await?;
        self.new_account(&user, secret).await?;
        self.bind(&user, tid, AccountDirection::Incoming).await?;
        self.delete_account(&swap).await?;
        Ok(Outcome::done())
    }

    async fn remember_initiator_secret(
        &self,
        name: &str,
        secret: Option<&Secret>,
    ) -> Result<Outcome, Error> {
        let seen = self.observe_or_fail().await?;
        let Some(t) = seen.target(name) else {
            return Ok(Outcome::failed(gone(name)));
        };
        let (tid, user) = (t.tid, outgoing_user(&t.name));
        let Some(secret) = secret else {
            self.delete_account(&user).await?;
            return Ok(Outcome::done());
        };
        Self::check_secret(&user, secret)?;
        // One outgoing account per target: another one bound there gives way (it is not deleted).
        for other in t
            .accounts
            .iter()
            .filter(|a| a.direction == AccountDirection::Outgoing && a.user != user)
        {
            let binding = AccountBinding {
                scope: AccountScope::Target(tid),
                direction: AccountDirection::Outgoing,
            };
            self.client
                .unbind_account(&other.user, binding)
                .await
                .map_err(|e| Self::chap_refused(&e, &format!("unbind account {:?}", other.user)))?;
        }
        self.delete_account(&user).await?;
        self.new_account(&user, secret).await?;
        if let Err(e) = self.bind(&user, tid, AccountDirection::Outgoing).await {
            let _ = self.delete_account(&user).await;
            return Err(e);
        }
        Ok(Outcome::done())
    }
}

/// `VDS_E_OBJECT_DELETED`: tgtd no longer has the target.
fn gone(name: &str) -> Error {
    Error::new(Hresult::VDS_E_OBJECT_DELETED)
        .because(format!("tgtd has no target named {name:?} any more"))
}

/// `VDS_E_DEVICE_IN_USE`: initiators are logged in to `t`.
fn in_use(t: &tgt_proto::show::Target) -> Error {
    let who: Vec<&str> = t
        .nexuses
        .iter()
        .filter_map(|n| n.initiator.as_deref())
        .collect();
    vds_model::target_in_use(&who)
}

fn not_supported(what: &str) -> Error {
    Error::new(Hresult::VDS_E_NOT_SUPPORTED).because(format!(
        "{what}: tgt has exactly one portal group per target (tag 1), holding every portal; \
         portals come and go with `online tportal`/`offline tportal`"
    ))
}

#[async_trait::async_trait]
impl ProviderBackend for TgtBackend {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: self.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            hw_type: HwProviderType::Iscsi,
        }
    }

    async fn reenumerate(
        &self,
        previous: &[SubSystemSnapshot],
    ) -> Result<Vec<SubSystemSnapshot>, Error> {
        let mine = previous.iter().find(|s| s.key == self.name);
        Ok(vec![
            self.current(mine, true)
                .await
                .map_err(|e| e.about_if_unset(self.subject()))?,
        ])
    }

    async fn refresh(&self, previous: &SubSystemSnapshot) -> Result<SubSystemSnapshot, Error> {
        self.current(Some(previous), false).await
    }

    async fn apply(
        &self,
        subsystem: &SubSystemSnapshot,
        mutation: &Mutation,
    ) -> Result<Applied, Error> {
        if subsystem.key != self.name {
            return Err(Error::new(Hresult::VDS_E_OBJECT_DELETED)
                .because(format!("this tgt provider's subsystem is {:?}", self.name)));
        }
        // The whole change is one read-modify-write of the state.
        let _lock = self.state.lock()?;
        let mut state = self.read_state()?;
        let outcome = match mutation {
            Mutation::SetPortalStatus { portal, status } => {
                let Some(addr) = portal.to_socket_addr() else {
                    return Err(Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND)
                        .because(format!("tgtd has no portal {portal}")));
                };
                let seen = self.observe_or_fail().await?;
                self.set_portal_status(&seen, &mut state, addr, *status)
                    .await?
            }
            Mutation::CreateTarget {
                iscsi_name,
                friendly_name,
            } => {
                self.create_target(&mut state, iscsi_name.as_deref(), friendly_name)
                    .await?
            }
            Mutation::DeleteTarget { iscsi_name } => {
                self.delete_target(&mut state, iscsi_name).await?
            }
            Mutation::SetTargetFriendlyName {
                iscsi_name,
                friendly_name,
            } => {
                self.set_alias(&mut state, iscsi_name, friendly_name)
                    .await?
            }
            Mutation::CreatePortalGroup { iscsi_name } => {
                let seen = self.observe_or_fail().await?;
                match seen.target(iscsi_name) {
                    Some(t) => Outcome {
                        created: Some(Created::PortalGroup {
                            iscsi_name: t.name.clone(),
                            tag: PORTAL_GROUP_TAG,
                        }),
                        code: Hresult::VDS_S_ALREADY_EXISTS,
                        failure: None,
                    },
                    None => Outcome::failed(gone(iscsi_name)),
                }
            }
            Mutation::DeletePortalGroup { .. } => {
                return Err(not_supported("a portal group cannot be deleted"));
            }
            Mutation::AddPortal { .. } => {
                return Err(not_supported("portals cannot be added to a portal group"));
            }
            Mutation::RemovePortal { .. } => {
                return Err(not_supported(
                    "portals cannot be removed from a portal group",
                ));
            }
            Mutation::SetTargetSharedSecret {
                iscsi_name,
                secret,
                initiator,
            } => {
                self.set_shared_secret(iscsi_name, secret.as_ref(), initiator.as_deref())
                    .await?
            }
            Mutation::RememberInitiatorSharedSecret {
                iscsi_name, secret, ..
            } => {
                self.remember_initiator_secret(iscsi_name, secret.as_ref())
                    .await?
            }
            _ => return Err(Error::new(Hresult::VDS_E_NOT_SUPPORTED)),
        };
        // The picture after the change: what tgtd says now.
        let seen = self.observe_or_fail().await?;
        let snapshot = picture(&self.identity(), &seen, &state);
        Ok(Applied {
            snapshot,
            created: outcome.created,
            outcome: outcome.code,
            failure: outcome.failure,
        })
    }
}
