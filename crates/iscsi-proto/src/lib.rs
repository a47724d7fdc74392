//! Sans-IO iSCSI for discovery (RFC 7143): everything a SendTargets client needs except the
//! socket and the clock.
//!
//! - [`wire`]: zero-copy [`wire::Packet`] views and typed [`wire::Repr`]s of the PDUs a discovery
//!   session uses (Login, Text, Logout, Reject, NOP-In/Out, Async Message; unknown opcodes parse).
//! - [`text`]: the `key=value\0` codec, with a multi-PDU accumulator.
//! - [`address`]: `TargetAddress` values and the SendTargets answer.
//! - [`chap`]: CHAP responses (MD5, SHA-1, SHA-256, SHA3-256) and redacted secrets.
//! - [`session`]: the discovery session state machine, fed bytes and drained of bytes/events.
//!
//! No sockets, no clock, no async runtime, no `unsafe`. The `iscsi-client` crate is the tokio
//! driver around it.
//!
//! ```
//! use iscsi_proto::session::{DiscoverySession, Event, SessionConfig, SessionSeed};
//!
//! let config = SessionConfig::new("iqn.2026-11.org.vds:initiator");
//! let mut session = DiscoverySession::new(config, SessionSeed::random()).unwrap();
//! let login = session.poll_transmit().unwrap(); // write these bytes to the socket
//! assert_eq!(login[0], 0x43); // an immediate Login Request
//! // ... then feed what the target answers:
//! // session.handle_bytes(&received)?;
//! // while let Some(event) = session.poll_event() { /* Event::Targets(..) ... */ }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod address;
pub mod chap;
pub mod error;
pub mod limits;
pub mod session;
pub mod text;
pub mod wire;

pub use address::{DiscoveredTarget, Host, TargetAddress};
pub use chap::{ChapAlgorithm, ChapCredentials, Secret};
pub use error::{
    ApiMisuse, Error, InvalidPdu, Limit, LoginFailure, LoginFailureReason, PeerMisbehaved,
};
pub use session::{
    DiscoverySession, Event, Phase, Purpose, SendTargetsQuery, SessionConfig, SessionSeed,
};
