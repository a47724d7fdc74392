//! VDS hardware providers that talk to real iSCSI arrays: implementations of the
//! [`vds_model::ProviderBackend`] seam, one module each.
//!
//! - [`sendtargets`]: arrays described by their discovery portals; portals, targets and portal
//!   groups come from iSCSI SendTargets discovery, portal status from discovery logins.
//!   Discovery-only: it changes nothing on the array.
//!
//! Providers own their network I/O and runtime; the model (`vds-model`) owns the cache, the ids, the
//! gates and the notifications, and never sees a socket.
//!
//! # Example
//!
//! ```no_run
//! use vds_model::HwProvider;
//! use vds_providers::sendtargets::{SendTargetsBackend, SendTargetsOptions, SendTargetsSubsystem};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let backend = SendTargetsBackend::new(
//!     vec![SendTargetsSubsystem {
//!         name: "lab".into(),
//!         portals: vec!["127.0.0.1:3260".parse()?],
//!         initiator_name: None,
//!         chap: None,
//!         mutual: None,
//!     }],
//!     SendTargetsOptions::default(),
//! )?;
//! let provider = HwProvider::new(backend);
//! provider.initialize()?;
//! provider.reenumerate()?;
//! let lab = provider.sub_system_by_key("lab")?;
//! println!("{:?}", lab.get_properties()?.status);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod error;
pub mod sendtargets;

pub use error::ProviderError;
