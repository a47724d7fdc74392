//! The property structures and the status, flag and type values of the VDS hardware-provider iSCSI
//! objects (`VDS_ISCSI_PORTAL_PROP`, `VDS_SUB_SYSTEM_PROP`, …), with their exact numeric values.
//!
//! Every status, flag and type is open: a value this crate does not know is kept (as `Other(n)` or
//! in the raw bits) and round-trips; nothing here panics on a value from a provider, a file or a peer.

use crate::{ObjectId, VdsIpAddress};

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident : $raw:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $label:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this crate does not know, kept as it came.
            Other($raw),
        }

        impl $name {
            /// The value from its raw number; unknown numbers become `Other`.
            pub const fn from_raw(raw: $raw) -> $name {
                match raw {
                    $( $value => $name::$variant, )+
                    other => $name::Other(other),
                }
            }

            /// The raw number.
            pub const fn to_raw(self) -> $raw {
                match self {
                    $( $name::$variant => $value, )+
                    $name::Other(other) => other,
                }
            }

            /// The upper-case label used in output (`ONLINE`, `NOT_READY`, …; `UNKNOWN(n)` for `Other`).
            pub fn label(self) -> std::borrow::Cow<'static, str> {
                match self {
                    $( $name::$variant => std::borrow::Cow::Borrowed($label), )+
                    $name::Other(n) => std::borrow::Cow::Owned(format!("UNKNOWN({n})")),
                }
            }

            /// The value whose label is `label` (case-insensitive), if any.
            pub fn from_label(label: &str) -> Option<$name> {
                $( if label.eq_ignore_ascii_case($label) { return Some($name::$variant); } )+
                None
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.label())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.to_raw().serialize(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                <$raw>::deserialize(d).map($name::from_raw)
            }
        }
    };
}

open_enum! {
    /// `VDS_ISCSI_PORTAL_STATUS`. There is no value 3.
    IscsiPortalStatus: i32 {
        /// `VDS_IPS_UNKNOWN`
        Unknown = 0 => "UNKNOWN",
        /// `VDS_IPS_ONLINE`: available.
        Online = 1 => "ONLINE",
        /// `VDS_IPS_NOT_READY`: busy.
        NotReady = 2 => "NOT_READY",
        /// `VDS_IPS_OFFLINE`: unavailable.
        Offline = 4 => "OFFLINE",
        /// `VDS_IPS_FAILED`
        Failed = 5 => "FAILED",
    }
}

open_enum! {
    /// `VDS_SUB_SYSTEM_STATUS`.
    SubSystemStatus: i32 {
        /// `VDS_SSS_UNKNOWN`
        Unknown = 0 => "UNKNOWN",
        /// `VDS_SSS_ONLINE`: working.
        Online = 1 => "ONLINE",
        /// `VDS_SSS_NOT_READY`: initializing.
        NotReady = 2 => "NOT_READY",
        /// `VDS_SSS_OFFLINE`: disconnected.
        Offline = 4 => "OFFLINE",
        /// `VDS_SSS_FAILED`: failed, not merely disconnected.
        Failed = 5 => "FAILED",
        /// `VDS_SSS_PARTIALLY_MANAGED`: some sub-components failed or could not be reached.
        PartiallyManaged = 9 => "PARTIALLY_MANAGED",
    }
}

open_enum! {
    /// `VDS_HEALTH` (the values documented for subsystems, and the rest of the enumeration).
    Health: i32 {
        /// `VDS_H_UNKNOWN`
        Unknown = 0 => "UNKNOWN",
        /// `VDS_H_HEALTHY`
        Healthy = 1 => "HEALTHY",
        /// `VDS_H_REBUILDING`
        Rebuilding = 2 => "REBUILDING",
        /// `VDS_H_STALE`
        Stale = 3 => "STALE",
        /// `VDS_H_FAILING`
        Failing = 4 => "FAILING",
        /// `VDS_H_FAILING_REDUNDANCY`
        FailingRedundancy = 5 => "FAILING_REDUNDANCY",
        /// `VDS_H_FAILED_REDUNDANCY`
        FailedRedundancy = 6 => "FAILED_REDUNDANCY",
        /// `VDS_H_FAILED_REDUNDANCY_FAILING`
        FailedRedundancyFailing = 7 => "FAILED_REDUNDANCY_FAILING",
        /// `VDS_H_FAILED`
        Failed = 8 => "FAILED",
        /// `VDS_H_REPLACED`
        Replaced = 9 => "REPLACED",
        /// `VDS_H_PENDING_FAILURE`
        PendingFailure = 10 => "PENDING_FAILURE",
        /// `VDS_H_DEGRADED`
        Degraded = 11 => "DEGRADED",
    }
}

open_enum! {
    /// `VDS_HWPROVIDER_TYPE`.
    HwProviderType: i32 {
        /// `VDS_HWT_UNKNOWN`
        Unknown = 0 => "UNKNOWN",
        /// `VDS_HWT_PCI_RAID`
        PciRaid = 1 => "PCI_RAID",
        /// `VDS_HWT_FIBRE_CHANNEL`
        FibreChannel = 2 => "FIBRE_CHANNEL",
        /// `VDS_HWT_ISCSI`
        Iscsi = 3 => "ISCSI",
        /// `VDS_HWT_SAS`
        Sas = 4 => "SAS",
        /// `VDS_HWT_HYBRID`
        Hybrid = 5 => "HYBRID",
    }
}

open_enum! {
    /// `VDS_PROVIDER_TYPE`.
    ProviderType: i32 {
        /// `VDS_PT_UNKNOWN`
        Unknown = 0 => "UNKNOWN",
        /// `VDS_PT_SOFTWARE`
        Software = 1 => "SOFTWARE",
        /// `VDS_PT_HARDWARE`
        Hardware = 2 => "HARDWARE",
        /// `VDS_PT_VIRTUALDISK`
        VirtualDisk = 3 => "VIRTUALDISK",
        /// `VDS_PT_MAX`
        Max = 4 => "MAX",
    }
}

/// `VDS_SUB_SYSTEM_FLAG`: a bit mask. Unknown bits are kept.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Debug, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct SubSystemFlags(pub u32);

impl SubSystemFlags {
    /// `VDS_SF_LUN_MASKING_CAPABLE`
    pub const LUN_MASKING_CAPABLE: SubSystemFlags = SubSystemFlags(0x1);
    /// `VDS_SF_LUN_PLEXING_CAPABLE`
    pub const LUN_PLEXING_CAPABLE: SubSystemFlags = SubSystemFlags(0x2);
    /// `VDS_SF_LUN_REMAPPING_CAPABLE`
    pub const LUN_REMAPPING_CAPABLE: SubSystemFlags = SubSystemFlags(0x4);
    /// `VDS_SF_DRIVE_EXTENT_CAPABLE`
    pub const DRIVE_EXTENT_CAPABLE: SubSystemFlags = SubSystemFlags(0x8);
    /// `VDS_SF_HARDWARE_CHECKSUM_CAPABLE`
    pub const HARDWARE_CHECKSUM_CAPABLE: SubSystemFlags = SubSystemFlags(0x10);
    /// `VDS_SF_RADIUS_CAPABLE`
    pub const RADIUS_CAPABLE: SubSystemFlags = SubSystemFlags(0x20);
    /// `VDS_SF_READ_BACK_VERIFY_CAPABLE`
    pub const READ_BACK_VERIFY_CAPABLE: SubSystemFlags = SubSystemFlags(0x40);
    /// `VDS_SF_WRITE_THROUGH_CACHING_CAPABLE`
    pub const WRITE_THROUGH_CACHING_CAPABLE: SubSystemFlags = SubSystemFlags(0x80);
    /// `VDS_SF_SUPPORTS_FAULT_TOLERANT_LUNS`
    pub const SUPPORTS_FAULT_TOLERANT_LUNS: SubSystemFlags = SubSystemFlags(0x200);
    /// `VDS_SF_SUPPORTS_NON_FAULT_TOLERANT_LUNS`
    pub const SUPPORTS_NON_FAULT_TOLERANT_LUNS: SubSystemFlags = SubSystemFlags(0x400);
    /// `VDS_SF_SUPPORTS_SIMPLE_LUNS`
    pub const SUPPORTS_SIMPLE_LUNS: SubSystemFlags = SubSystemFlags(0x800);
    /// `VDS_SF_SUPPORTS_SPAN_LUNS`
    pub const SUPPORTS_SPAN_LUNS: SubSystemFlags = SubSystemFlags(0x1000);
    /// `VDS_SF_SUPPORTS_STRIPE_LUNS`
    pub const SUPPORTS_STRIPE_LUNS: SubSystemFlags = SubSystemFlags(0x2000);
    /// `VDS_SF_SUPPORTS_MIRROR_LUNS`
    pub const SUPPORTS_MIRROR_LUNS: SubSystemFlags = SubSystemFlags(0x4000);
    /// `VDS_SF_SUPPORTS_PARITY_LUNS`
    pub const SUPPORTS_PARITY_LUNS: SubSystemFlags = SubSystemFlags(0x8000);
    /// `VDS_SF_SUPPORTS_AUTH_CHAP`
    pub const SUPPORTS_AUTH_CHAP: SubSystemFlags = SubSystemFlags(0x10000);
    /// `VDS_SF_SUPPORTS_AUTH_MUTUAL_CHAP`
    pub const SUPPORTS_AUTH_MUTUAL_CHAP: SubSystemFlags = SubSystemFlags(0x20000);
    /// `VDS_SF_SUPPORTS_SIMPLE_TARGET_CONFIG`: targets cannot be created or deleted by the caller.
    pub const SUPPORTS_SIMPLE_TARGET_CONFIG: SubSystemFlags = SubSystemFlags(0x40000);
    /// `VDS_SF_SUPPORTS_LUN_NUMBER`
    pub const SUPPORTS_LUN_NUMBER: SubSystemFlags = SubSystemFlags(0x80000);
    /// `VDS_SF_SUPPORTS_MIRRORED_CACHE`
    pub const SUPPORTS_MIRRORED_CACHE: SubSystemFlags = SubSystemFlags(0x100000);
    /// `VDS_SF_READ_CACHING_CAPABLE`
    pub const READ_CACHING_CAPABLE: SubSystemFlags = SubSystemFlags(0x200000);
    /// `VDS_SF_WRITE_CACHING_CAPABLE`
    pub const WRITE_CACHING_CAPABLE: SubSystemFlags = SubSystemFlags(0x400000);
    /// `VDS_SF_MEDIA_SCAN_CAPABLE`
    pub const MEDIA_SCAN_CAPABLE: SubSystemFlags = SubSystemFlags(0x800000);
    /// `VDS_SF_CONSISTENCY_CHECK_CAPABLE`
    pub const CONSISTENCY_CHECK_CAPABLE: SubSystemFlags = SubSystemFlags(0x1000000);

    /// Every named flag with its VDS name, in bit order.
    pub const NAMED: &'static [(SubSystemFlags, &'static str)] = &[
        (Self::LUN_MASKING_CAPABLE, "LUN_MASKING_CAPABLE"),
        (Self::LUN_PLEXING_CAPABLE, "LUN_PLEXING_CAPABLE"),
        (Self::LUN_REMAPPING_CAPABLE, "LUN_REMAPPING_CAPABLE"),
        (Self::DRIVE_EXTENT_CAPABLE, "DRIVE_EXTENT_CAPABLE"),
        (Self::HARDWARE_CHECKSUM_CAPABLE, "HARDWARE_CHECKSUM_CAPABLE"),
        (Self::RADIUS_CAPABLE, "RADIUS_CAPABLE"),
        (Self::READ_BACK_VERIFY_CAPABLE, "READ_BACK_VERIFY_CAPABLE"),
        (
            Self::WRITE_THROUGH_CACHING_CAPABLE,
            "WRITE_THROUGH_CACHING_CAPABLE",
        ),
        (
            Self::SUPPORTS_FAULT_TOLERANT_LUNS,
            "SUPPORTS_FAULT_TOLERANT_LUNS",
        ),
        (
            Self::SUPPORTS_NON_FAULT_TOLERANT_LUNS,
            "SUPPORTS_NON_FAULT_TOLERANT_LUNS",
        ),
        (Self::SUPPORTS_SIMPLE_LUNS, "SUPPORTS_SIMPLE_LUNS"),
        (Self::SUPPORTS_SPAN_LUNS, "SUPPORTS_SPAN_LUNS"),
        (Self::SUPPORTS_STRIPE_LUNS, "SUPPORTS_STRIPE_LUNS"),
        (Self::SUPPORTS_MIRROR_LUNS, "SUPPORTS_MIRROR_LUNS"),
        (Self::SUPPORTS_PARITY_LUNS, "SUPPORTS_PARITY_LUNS"),
        (Self::SUPPORTS_AUTH_CHAP, "SUPPORTS_AUTH_CHAP"),
        (Self::SUPPORTS_AUTH_MUTUAL_CHAP, "SUPPORTS_AUTH_MUTUAL_CHAP"),
        (
            Self::SUPPORTS_SIMPLE_TARGET_CONFIG,
            "SUPPORTS_SIMPLE_TARGET_CONFIG",
        ),
        (Self::SUPPORTS_LUN_NUMBER, "SUPPORTS_LUN_NUMBER"),
        (Self::SUPPORTS_MIRRORED_CACHE, "SUPPORTS_MIRRORED_CACHE"),
        (Self::READ_CACHING_CAPABLE, "READ_CACHING_CAPABLE"),
        (Self::WRITE_CACHING_CAPABLE, "WRITE_CACHING_CAPABLE"),
        (Self::MEDIA_SCAN_CAPABLE, "MEDIA_SCAN_CAPABLE"),
        (Self::CONSISTENCY_CHECK_CAPABLE, "CONSISTENCY_CHECK_CAPABLE"),
    ];

    /// True when every bit of `other` is set in `self`.
    pub const fn contains(self, other: SubSystemFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The names of the set bits; unknown bits as `0x…`.
    pub fn names(self) -> Vec<String> {
        let mut rest = self.0;
        let mut out = Vec::new();
        for (flag, name) in Self::NAMED {
            if self.contains(*flag) {
                out.push((*name).to_string());
                rest &= !flag.0;
            }
        }
        if rest != 0 {
            out.push(format!("{rest:#x}"));
        }
        out
    }
}

impl std::ops::BitOr for SubSystemFlags {
    type Output = SubSystemFlags;
    fn bitor(self, rhs: SubSystemFlags) -> SubSystemFlags {
        SubSystemFlags(self.0 | rhs.0)
    }
}

/// `VDS_ISCSI_PORTAL_PROP`: what `IVdsIscsiPortal::GetProperties` returns.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct IscsiPortalProp {
    /// The portal's id.
    pub id: ObjectId,
    /// Its address and TCP port.
    pub address: VdsIpAddress,
    /// Its status.
    pub status: IscsiPortalStatus,
}

/// `VDS_ISCSI_PORTALGROUP_PROP`: id and target portal group tag.
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct IscsiPortalGroupProp {
    /// The group's id.
    pub id: ObjectId,
    /// The iSCSI Target Portal Group Tag (`VDS_ISCSI_PORTALGROUP_TAG`).
    pub tag: u16,
}

/// `VDS_ISCSI_TARGET_PROP`.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct IscsiTargetProp {
    /// The target's id.
    pub id: ObjectId,
    /// The iSCSI name (IQN, EUI or NAA form).
    pub iscsi_name: String,
    /// The friendly name: the iSCSI alias (empty when none).
    pub friendly_name: String,
    /// True when a CHAP secret is needed to log in.
    pub chap_enabled: bool,
}

/// `VDS_SUB_SYSTEM_PROP`.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct SubSystemProp {
    /// The subsystem's id.
    pub id: ObjectId,
    /// Brand and model, or the name the administrator gave it.
    pub friendly_name: String,
    /// Identification (for example a serial number or the discovery portals).
    pub identification: String,
    /// `ulFlags`.
    pub flags: SubSystemFlags,
    /// `ulStripeSizeFlags`: bit n set means stripe size 2^n is supported.
    pub stripe_size_flags: u32,
    /// `status`.
    pub status: SubSystemStatus,
    /// `health`.
    pub health: Health,
    /// `sNumberOfInternalBuses`.
    pub number_of_internal_buses: i16,
    /// `sMaxNumberOfSlotsEachBus`.
    pub max_number_of_slots_each_bus: i16,
    /// `sMaxNumberOfControllers`.
    pub max_number_of_controllers: i16,
    /// `sRebuildPriority` (0 lowest … 15 highest).
    pub rebuild_priority: i16,
}

/// `VDS_PROVIDER_PROP`.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct ProviderProp {
    /// The provider's id.
    pub id: ObjectId,
    /// `pwszName`.
    pub name: String,
    /// `guidVersionId`.
    pub version_id: ObjectId,
    /// `pwszVersion`.
    pub version: String,
    /// `type`: always `Hardware` for the providers of this crate.
    pub provider_type: ProviderType,
    /// `ulFlags` (`VDS_PROVIDER_FLAG`).
    pub flags: u32,
    /// `ulStripeSizeFlags`.
    pub stripe_size_flags: u32,
    /// `sRebuildPriority`.
    pub rebuild_priority: i16,
}
