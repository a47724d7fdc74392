//! What the tgt provider keeps between processes, in the provider's state file in the store: what
//! tgtd itself cannot hold.
//!
//! - **Held portals**: a portal vds took offline (tgtd forgets a deleted portal entirely) or could
//!   not bring back online (tgtd refused to listen there), with why. A held portal tgtd lists again
//!   (someone added it back, tgtd restarted with it) is no longer held: what tgtd says wins.
//! - **Aliases**: tgtd has no alias for a target; vds keeps the friendly name given to
//!   `CreateTarget`/`SetFriendlyName` here, by iSCSI name, and forgets it when the target is gone.
//!
//! No secret is ever written here: CHAP secrets go to tgtd and nowhere else.
//!
//! The file is JSON (`{"version": 1, "portals": [...], "aliases": {...}}`); one that does not
//! parse is reported as a corrupt provider cache, and `reenumerate` starts the provider afresh.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use vds_model::{Error, Hresult};

/// The version this build writes and reads.
const VERSION: u32 = 1;

/// Why a portal tgtd does not list is still shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Held {
    /// `SetStatus(OFFLINE)` deleted it from tgtd.
    Offline,
    /// `SetStatus(ONLINE)` asked tgtd to listen there and tgtd could not.
    Failed,
}

/// A portal vds remembers while tgtd does not list it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HeldPortal {
    /// Address and port, as tgtd lists portals (no scope id).
    pub(crate) address: SocketAddr,
    /// Offline or failed.
    pub(crate) status: Held,
    /// For a failed portal: why tgtd could not listen there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
}

/// The provider's state. See the module documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TgtState {
    /// Always [`VERSION`].
    #[serde(default = "version")]
    version: u32,
    /// Held portals, each address once.
    #[serde(default)]
    pub(crate) portals: Vec<HeldPortal>,
    /// Aliases by iSCSI name.
    #[serde(default)]
    pub(crate) aliases: BTreeMap<String, String>,
}

fn version() -> u32 {
    VERSION
}

fn corrupt(why: impl Into<String>) -> Error {
    Error::new(Hresult::VDS_E_PROVIDER_CACHE_CORRUPT).because(format!(
        "the tgt provider's state (offline portals, aliases) {}; `vdsadm reenumerate` starts it \
         afresh",
        why.into()
    ))
}

impl TgtState {
    /// The state in `bytes` (`None`: nothing written yet, the empty state).
    pub(crate) fn decode(bytes: Option<&[u8]>) -> Result<TgtState, Error> {
        let Some(bytes) = bytes else {
            return Ok(TgtState::new());
        };
        let state: TgtState =
            serde_json::from_slice(bytes).map_err(|e| corrupt(format!("does not parse: {e}")))?;
        if state.version != VERSION {
            return Err(corrupt(format!(
                "has version {}; this vds reads version {VERSION}",
                state.version
            )));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = state.portals.iter().find(|p| !seen.insert(p.address)) {
            return Err(corrupt(format!("holds portal {} twice", dup.address)));
        }
        Ok(state)
    }

    /// An empty state.
    pub(crate) fn new() -> TgtState {
        TgtState {
            version: VERSION,
            ..TgtState::default()
        }
    }

    /// The bytes to write.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(self).map_err(|e| {
            Error::new(Hresult::E_UNEXPECTED)
                .because(format!("cannot encode the tgt provider's state: {e}"))
        })
    }

    /// Holds `address` with `status` (replacing what was held for it).
    pub(crate) fn hold(&mut self, address: SocketAddr, status: Held, reason: Option<String>) {
        self.release(address);
        self.portals.push(HeldPortal {
            address,
            status,
            reason,
        });
    }

    /// Forgets what was held for `address`.
    pub(crate) fn release(&mut self, address: SocketAddr) {
        self.portals.retain(|p| p.address != address);
    }

    /// Forgets held portals tgtd lists again and aliases of targets tgtd no longer has (names
    /// compare exactly, as tgtd keeps them). True when something changed.
    pub(crate) fn prune<'a>(
        &mut self,
        live_portals: &[SocketAddr],
        targets: impl IntoIterator<Item = &'a str>,
    ) -> bool {
        let before = (self.portals.len(), self.aliases.len());
        self.portals.retain(|p| !live_portals.contains(&p.address));
        let names: std::collections::HashSet<&str> = targets.into_iter().collect();
        self.aliases.retain(|name, _| names.contains(name.as_str()));
        before != (self.portals.len(), self.aliases.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn round_trips_and_refuses_damage() {
        let mut s = TgtState::new();
        s.hold(a("127.0.0.1:3260"), Held::Offline, None);
        s.hold(a("[::1]:3260"), Held::Failed, Some("in use".into()));
        s.aliases.insert("iqn.x:t".into(), "web".into());
        let bytes = s.encode().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains(r#""address":"[::1]:3260","status":"failed""#),
            "{text}"
        );
        assert_eq!(TgtState::decode(Some(&bytes)).unwrap(), s);
        assert_eq!(TgtState::decode(None).unwrap(), TgtState::new());
        for bad in [
            &b"not json"[..],
            br#"{"version": 2}"#,
            br#"{"version": 1, "portals": [{"address": "nope", "status": "offline"}]}"#,
            br#"{"version": 1, "portals": [{"address": "127.0.0.1:1", "status": "gone"}]}"#,
            br#"{"version": 1, "portals": [{"address": "127.0.0.1:1", "status": "offline"},
                {"address": "127.0.0.1:1", "status": "failed"}]}"#,
        ] {
            let e = TgtState::decode(Some(bad)).unwrap_err();
            assert_eq!(e, Hresult::VDS_E_PROVIDER_CACHE_CORRUPT);
            assert!(e.to_string().contains("reenumerate"), "{e}");
        }
    }

    #[test]
    fn hold_replaces_and_prune_forgets_what_tgtd_has_again() {
        let mut s = TgtState::new();
        s.hold(a("127.0.0.1:1"), Held::Offline, None);
        s.hold(a("127.0.0.1:1"), Held::Failed, Some("x".into()));
        assert_eq!(s.portals.len(), 1);
        assert_eq!(s.portals[0].status, Held::Failed);
        s.hold(a("127.0.0.1:2"), Held::Offline, None);
        s.aliases.insert("iqn.x:a".into(), "A".into());
        s.aliases.insert("iqn.x:b".into(), "B".into());
        assert!(!s.clone().prune(&[], ["iqn.x:a", "iqn.x:b"]));
        assert!(s.prune(&[a("127.0.0.1:2")], ["iqn.x:b"]));
        assert_eq!(s.portals.len(), 1);
        assert_eq!(s.aliases.keys().collect::<Vec<_>>(), ["iqn.x:b"]);
    }
}
