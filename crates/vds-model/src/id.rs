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

/// `Uuid::new_v5(namespace, parts.concat())` (RFC 9562 §5.5), hashed with the `sha1` crate, which
/// uses the CPU's SHA instructions where there are some: a refresh derives an id for every
/// portal, target and portal group it loads, and uuid's portable SHA-1 was a tenth of its CPU.
fn v5(namespace: &Uuid, parts: &[&[u8]]) -> Uuid {
    use sha1::Digest;
    let mut hash = sha1::Sha1::new();
    hash.update(namespace.as_bytes());
    for part in parts {
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

impl ObjectId {
    /// The nil GUID (`GUID_NULL`).
    pub const NIL: ObjectId = ObjectId(Uuid::nil());

    /// The id of the provider named `name`.
    pub fn provider(name: &str) -> ObjectId {
        ObjectId(v5(&VDS_NAMESPACE, &[b"provider\0", name.as_bytes()]))
    }

    /// The id of a child of `self` whose kind is `kind` and natural key is `key`.
    pub fn child(self, kind: &str, key: &str) -> ObjectId {
        // The name is `kind NUL key`.
        ObjectId(v5(&self.0, &[kind.as_bytes(), b"\0", key.as_bytes()]))
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

    proptest::proptest! {
        /// The ids are uuid's own version 5 UUIDs of `kind NUL key` (so every id computed
        /// before, stored in caches and shown to users, is still the same).
        #[test]
        fn ids_are_uuid_version_5(kind in ".{0,12}", key in ".{0,200}", name in ".{0,40}") {
            let p = ObjectId::provider(&name);
            proptest::prop_assert_eq!(
                p.0,
                Uuid::new_v5(&VDS_NAMESPACE, format!("provider\0{name}").as_bytes())
            );
            proptest::prop_assert_eq!(
                p.child(&kind, &key).0,
                Uuid::new_v5(&p.0, format!("{kind}\0{key}").as_bytes())
            );
        }
    }

    #[test]
    fn a_known_id() {
        // Pinned (computed independently, with Python's uuid.uuid5): provider "sim" and its
        // subsystem "array1", as every earlier release derived them.
        let p = ObjectId::provider("sim");
        assert_eq!(p.to_string(), "868a8e1a-105c-51a9-a8c5-6e7b9c809b03");
        assert_eq!(
            p.child("subsystem", "array1").to_string(),
            "9b61b1b0-d57d-5eff-a845-b8888b42aad7"
        );
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
