//! Sans-IO codec for tgtd's management IPC, the protocol `tgtadm` speaks over tgtd's Unix
//! socket: requests, reply headers and the text of `show` replies. No sockets, no clock, no async
//! runtime, no `unsafe`, nothing of VDS. The `tgt-client` crate is the tokio driver around it.
//!
//! - [`wire`]: zero-copy views of the 120-byte request header and the 8-byte reply header, and
//!   the open enums [`Mode`], [`Operation`], [`ErrorCode`] (codes 0–24 by tgtd's names; an unknown
//!   value round-trips).
//! - [`request`]: the typed [`Request`] for every operation a provider needs, emitted to exactly
//!   the bytes tgtadm 1.0.85 sends, and parsed back.
//! - [`reply`]: the reply header ([`ReplyRepr`]) with its length check, and [`reply_text`].
//! - [`show`]: parsers (and renderers) for the `show` grammars: targets, portals, accounts,
//!   system, drivers.
//!
//! One exchange per connection: the client writes one request, tgtd writes one reply and closes.
//!
//! ```
//! use tgt_proto::{ErrorCode, ReplyRepr, Request, reply_text, show};
//!
//! let bytes = Request::NewTarget { tid: 1, name: "iqn.2026-12.org.vds:t1".into() }.emit()?;
//! assert_eq!(bytes.len(), 120 + "targetname=iqn.2026-12.org.vds:t1".len() + 1);
//!
//! // ... write `bytes`, read the 8-byte header, then `payload_len()` more bytes:
//! let header = ReplyRepr::parse(&[0, 0, 0, 0, 35, 0, 0, 0])?;
//! assert_eq!(header.code, ErrorCode::Success);
//! let payload = b"Portal: 127.0.0.1:3260,1\n\0";
//! let portals = show::parse_portals(&reply_text(payload))?;
//! assert_eq!(portals[0].tpgt, 1);
//! # Ok::<(), tgt_proto::Error>(())
//! ```
//!
//! # What a request may hold
//!
//! [`Request::emit`] refuses, with a typed [`Refused`], every request tgtd would choke on or
//! misread; [`Request::parse`] applies the same rules.
//!
//! | value | rule | why |
//! |---|---|---|
//! | payload | text + NUL ≤ 8192 bytes ([`wire::MAX_REQUEST_PAYLOAD`]) | tgtd closes without a reply above (checked: 8192 answered, 8193 not) |
//! | any text | no NUL | tgtd reads C strings |
//! | tid | 1 to 2^31−1 | tgtd's tid is a positive `int`; −1 means "no target" |
//! | target name | 1–223 bytes of `[A-Za-z0-9:.-]` | tgtd answers 17 to other characters; 223 is the iSCSI name limit |
//! | "new target" | always has `targetname=` | without a payload tgtd dereferences NULL and dies (target.c:2142); the typed request cannot express it |
//! | ACL value | non-empty printable ASCII, no space, `,` or `=` | tgtd looks for both ACL keys anywhere in the payload, so `=` could bind a second entry; one key per request |
//! | account user | non-empty printable ASCII, no space or `,` | tgtd ends the user at the first comma; `show` prints one per line with ` (outgoing)` appended |
//! | account password | non-empty, no NUL; **commas allowed** | tgtd takes everything after `password=` to the NUL (mgmt.c); an empty secret is accepted by tgtd but makes CHAP meaningless, so we refuse it |
//! | portal | port ≠ 0, IPv6 without scope id or flow info | tgtd matches portals by `inet_ntop` form and port |
//! | system param | key `[A-Za-z0-9_.-]+`, value printable ASCII without `,`; at least one | tgtd splits the payload on commas |
//!
//! Portal requests are sent as tgtadm sends them, `portalOps portal=ADDR:PORT,`; tgtd also takes
//! the plain `portal=ADDR:PORT`, and [`Request::parse`] reads both.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod error;
pub mod reply;
pub mod request;
pub mod show;
pub mod wire;

pub use error::{Error, Field, InvalidMessage, Refused, ShowError};
pub use reply::{Reply, ReplyRepr, reply_text};
pub use request::{
    AccountBinding, AccountDirection, AccountScope, Acl, Request, RequestRepr, SystemParam,
    TargetState,
};
pub use vds_secret::Secret;
pub use wire::{ErrorCode, Mode, Operation};
