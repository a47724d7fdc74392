//! The VDS hardware-provider object model, centred on `IVdsSubSystemIscsi::QueryPortals`.
//!
//! This crate is the Rust form of the Windows Virtual Disk Service's iSCSI hardware-provider
//! interfaces: a [`HwProvider`] owns [`SubSystem`]s; a subsystem has [`Portal`]s and [`Target`]s; a
//! target has [`PortalGroup`]s, which hold portals. Every method answers with the exact `HRESULT`
//! semantics of VDS ([`Hresult`]), enumerations are snapshot [`EnumVdsObject`]s, and ids are stable
//! GUIDs ([`ObjectId`]) derived from each object's natural key.
//!
//! Real arrays plug in through the [`ProviderBackend`] seam; [`sim`] is the in-process simulator.
//! The crate has no sockets and no files: providers that talk to arrays live in `vds-providers`, the
//! persistent cache in `vds-store`.
//!
//! # Example: the portals of the simulator
//!
//! ```
//! use vds_model::{Error, HwProvider, Hresult, sim::SimBackend};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let provider = HwProvider::new(SimBackend::demo());
//! provider.initialize()?;
//! provider.reenumerate().await?; // talks to the array: asynchronous
//! for subsystem in provider.query_sub_systems()? { // answers from the cache: synchronous
//!     let props = subsystem.get_properties()?;
//!     println!("subsystem {} ({})", props.friendly_name, props.status);
//!     let mut portals = subsystem.query_portals()?;
//!     loop {
//!         let (batch, hr) = portals.next(1);
//!         for portal in batch {
//!             let p = portal.get_properties()?;
//!             println!("  portal {} {} {}", p.id, p.address, p.status);
//!         }
//!         if hr == Hresult::S_FALSE {
//!             break;
//!         }
//!     }
//! }
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod address;
pub mod backend;
mod enumerator;
mod error;
pub mod ffi;
mod hresult;
mod id;
mod notify;
mod objects;
mod props;
pub mod provider;
pub mod sim;
mod state;

pub use address::{
    ISCSI_DEFAULT_PORT, IpAddressType, MAX_TEXT_ADDRESS_UNITS, VdsIpAddress, dotted_quad,
};
pub use backend::{
    Applied, Created, Fresh, Mutation, PortalGroupSnapshot, PortalSnapshot, ProviderBackend,
    ProviderInfo, SubSystemSnapshot, TargetSnapshot, target_in_use,
};
pub use enumerator::{EnumVdsObject, IntoIter};
pub use error::{Error, ResultExt, Subject};
pub use hresult::{FACILITY_ITF, FACILITY_WIN32, Hresult, Win32Error};
pub use id::ObjectId;
pub use notify::{
    AsyncOutputType, Notification, NotificationEvent, NotificationTargetType, ObjectType,
};
pub use objects::{MAX_FRIENDLY_NAME_BYTES, Portal, PortalGroup, SubSystem, Target};
pub use props::{
    Health, HwProviderType, IscsiPortalGroupProp, IscsiPortalProp, IscsiPortalStatus,
    IscsiTargetProp, ProviderProp, ProviderType, SubSystemFlags, SubSystemProp, SubSystemStatus,
};
pub use provider::{
    CacheHealth, Committed, HwProvider, NotificationSink, RefreshReport, SubSystemSummary,
    SubsystemRefreshed,
};
pub use state::{InvariantError, PictureStamp, check_snapshots};
