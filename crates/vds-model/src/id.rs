//! `VDS_OBJECT_ID`: a GUID that names one real object, stable across refreshes and restarts.
//!
//! Ids are never random. Each is a UUID version 5 derived from the object's natural key (the
//! provider's name; the subsystem's key; a portal's canonical address and port; a target's iSCSI name;
//! a portal group's tag) under its parent's id, so the same array seen again, by another process or
//! after a reboot, yields the same ids.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// A VDS object id (`VDS_OBJECT_ID`, a GUID).
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ObjectId(pub Uuid);

/// The namespace under which provider ids are derived.
const VDS_NAMESPACE: Uuid = Uuid::from_u128(0x6a1d_3f0e_9c55_4c1b_8f62_2d1e_4b7a_90c3);

impl ObjectId {
    /// The nil GUID (`GUID_NULL`).
    pub const NIL: ObjectId = ObjectId(Uuid::nil());

    /// The id of the provider named `name`.
    pub fn provider(name: &str) -> ObjectId {
        ObjectId(Uuid::new_v5(
            &VDS_NAMESPACE,
            format!("provider\0{name}").as_bytes(),
        ))
    }

    /// The id of a child of `self` whose kind is `kind` and natural key is `key`.
    pub fn child(self, kind: &str, key: &str) -> ObjectId {
        // The name is `kind NUL key`; short ones (every portal, most targets) are built on the stack.
        let len = kind.len() + 1 + key.len();
        let mut stack = [0u8; 256];
        let mut heap = Vec::new();
        let name: &mut [u8] = if len <= stack.len() {
            &mut stack[..len]
        } else {
            heap.resize(len, 0);
            &mut heap
        };
        name[..kind.len()].copy_from_slice(kind.as_bytes());
        name[kind.len() + 1..].copy_from_slice(key.as_bytes());
        ObjectId(Uuid::new_v5(&self.0, name))
    }

    /// The GUID in the registry form Windows prints: `{6B29FC40-CA47-1067-B31D-00DD010662DA}`.
    pub fn to_braced_upper(self) -> String {
        format!("{{{}}}", self.0.hyphenated().to_string().to_uppercase())
    }
}

/// Lower-case hyphenated, without braces: `6b29fc40-ca47-1067-b31d-00dd010662da`.
impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// Accepts the hyphenated form with or without braces, in either case.
impl FromStr for ObjectId {
    type Err = crate::Hresult;
    fn from_str(s: &str) -> Result<ObjectId, crate::Hresult> {
        let s = s.trim();
        let inner = s
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or(s);
        Uuid::parse_str(inner)
            .map(ObjectId)
            .map_err(|_| crate::Hresult::E_INVALIDARG)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let p = ObjectId::provider("sim");
        assert_eq!(p, ObjectId::provider("sim"));
        assert_ne!(p, ObjectId::provider("sendtargets"));
        let a = p.child("subsystem", "array1");
        assert_eq!(a, ObjectId::provider("sim").child("subsystem", "array1"));
        assert_ne!(a, p.child("subsystem", "array2"));
        // The kind is part of the key: a target and a portal with the same text differ.
        assert_ne!(a.child("portal", "x"), a.child("target", "x"));
        // Version 5, RFC 4122 variant.
        assert_eq!(a.0.get_version_num(), 5);
    }

    #[test]
    fn parse_and_print() {
        let id = ObjectId::provider("sim");
        let braced = id.to_braced_upper();
        assert!(braced.starts_with('{') && braced.ends_with('}'));
        assert_eq!(braced.parse::<ObjectId>(), Ok(id));
        assert_eq!(id.to_string().parse::<ObjectId>(), Ok(id));
        assert_eq!(
            "not-a-guid".parse::<ObjectId>(),
            Err(crate::Hresult::E_INVALIDARG)
        );
    }
}
