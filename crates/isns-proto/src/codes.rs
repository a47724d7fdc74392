//! The open wire enums of iSNS: [`Function`], [`Status`], [`Tag`], [`NodeType`]. Each is a
//! transparent newtype over its wire integer with one associated constant per known value, so any
//! value parses, compares, matches in patterns and emits back unchanged; `name()` says what a known
//! value means. All of them are made by one macro, `wire_codes!`, one line per value.

/// Defines an open wire code: `#[repr(transparent)]` newtype, one `pub const` per known value,
/// `name()` (`None` for unknown values), `Display` (`NAME (value)` or `unknown (value)`) and
/// conversions from and to the integer.
macro_rules! wire_codes {
    (
        $(#[$meta:meta])*
        $name:ident($int:ty) {
            $( $(#[$vmeta:meta])* $konst:ident = $value:expr, $text:expr; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(transparent)]
        pub struct $name(pub $int);

        impl $name {
            $(
                #[doc = $text]
                $(#[$vmeta])*
                pub const $konst: $name = $name($value);
            )*

            /// The meaning of a known value; `None` for a value this crate does not name.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($text), )*
                    _ => None,
                }
            }
        }

        impl From<$int> for $name {
            fn from(v: $int) -> Self {
                $name(v)
            }
        }

        impl From<$name> for $int {
            fn from(v: $name) -> $int {
                v.0
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}({} {:?})", stringify!($name), self.0, n),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{n} ({})", self.0),
                    None => write!(f, "unknown ({})", self.0),
                }
            }
        }
    };
}

wire_codes! {
    /// The iSNSP function id (RFC 4171 §6.1). A response is its request's id with bit 15 set
    /// ([`Function::response`]).
    Function(u16) {
        DEV_ATTR_REG = 0x0001, "DevAttrReg";
        DEV_ATTR_QRY = 0x0002, "DevAttrQry";
        DEV_GET_NEXT = 0x0003, "DevGetNext";
        DEV_DEREG = 0x0004, "DevDereg";
        SCN_REG = 0x0005, "SCNReg";
        SCN_DEREG = 0x0006, "SCNDereg";
        SCN_EVENT = 0x0007, "SCNEvent";
        SCN = 0x0008, "SCN";
        DD_REG = 0x0009, "DDReg";
        DD_DEREG = 0x000a, "DDDereg";
        DDS_REG = 0x000b, "DDSReg";
        DDS_DEREG = 0x000c, "DDSDereg";
        ESI = 0x000d, "ESI";
        HEARTBEAT = 0x000e, "Heartbeat";
        DEV_ATTR_REG_RSP = 0x8001, "DevAttrRegRsp";
        DEV_ATTR_QRY_RSP = 0x8002, "DevAttrQryRsp";
        DEV_GET_NEXT_RSP = 0x8003, "DevGetNextRsp";
        DEV_DEREG_RSP = 0x8004, "DevDeregRsp";
        SCN_REG_RSP = 0x8005, "SCNRegRsp";
        SCN_DEREG_RSP = 0x8006, "SCNDeregRsp";
        SCN_EVENT_RSP = 0x8007, "SCNEventRsp";
        SCN_RSP = 0x8008, "SCNRsp";
        DD_REG_RSP = 0x8009, "DDRegRsp";
        DD_DEREG_RSP = 0x800a, "DDDeregRsp";
        DDS_REG_RSP = 0x800b, "DDSRegRsp";
        DDS_DEREG_RSP = 0x800c, "DDSDeregRsp";
        ESI_RSP = 0x800d, "ESIRsp";
    }
}

impl Function {
    /// Bit 15 of the function id marks a response.
    pub const RESPONSE_BIT: u16 = 0x8000;

    /// Whether this is a response (bit 15 set); a response payload starts with a 4-byte status.
    pub const fn is_response(self) -> bool {
        self.0 & Self::RESPONSE_BIT != 0
    }

    /// The response function to this request function (`self | 0x8000`).
    pub const fn response(self) -> Function {
        Function(self.0 | Self::RESPONSE_BIT)
    }
}

wire_codes! {
    /// The status word that starts every response payload (RFC 4171 §6.4).
    Status(u32) {
        SUCCESSFUL = 0, "Successful";
        UNKNOWN_ERROR = 1, "Unknown Error";
        MESSAGE_FORMAT_ERROR = 2, "Message Format Error";
        INVALID_REGISTRATION = 3, "Invalid Registration";
        INVALID_QUERY = 5, "Invalid Query";
        SOURCE_UNKNOWN = 6, "Source Unknown";
        SOURCE_ABSENT = 7, "Source Absent";
        SOURCE_UNAUTHORIZED = 8, "Source Unauthorized";
        NO_SUCH_ENTRY = 9, "No Such Entry";
        VERSION_NOT_SUPPORTED = 10, "Version Not Supported";
        INTERNAL_ERROR = 11, "Internal Error";
        BUSY = 12, "Busy";
        OPTION_NOT_UNDERSTOOD = 13, "Option Not Understood";
        INVALID_UPDATE = 14, "Invalid Update";
        MESSAGE_NOT_SUPPORTED = 15, "Message (FUNCTION_ID) Not Supported";
        SCN_EVENT_REJECTED = 16, "SCN Event Rejected";
        SCN_REGISTRATION_REJECTED = 17, "SCN Registration Rejected";
        ATTRIBUTE_NOT_IMPLEMENTED = 18, "Attribute Not Implemented";
        FC_DOMAIN_ID_NOT_AVAILABLE = 19, "FC_DOMAIN_ID Not Available";
        FC_DOMAIN_ID_NOT_ALLOCATED = 20, "FC_DOMAIN_ID Not Allocated";
        ESI_NOT_AVAILABLE = 21, "ESI Not Available";
        INVALID_DEREGISTRATION = 22, "Invalid Deregistration";
        REGISTRATION_FEATURE_NOT_SUPPORTED = 23, "Registration Feature Not Supported";
    }
}

impl Status {
    /// Status 0.
    pub const fn is_success(self) -> bool {
        self.0 == 0
    }
}

wire_codes! {
    /// An attribute tag (RFC 4171 §6.1). How each known tag's value is typed is
    /// [`Tag::value_kind`], the one table of value types.
    Tag(u32) {
        DELIMITER = 0, "Delimiter";
        ENTITY_IDENTIFIER = 1, "Entity Identifier (EID)";
        ENTITY_PROTOCOL = 2, "Entity Protocol";
        MANAGEMENT_IP = 3, "Management IP Address";
        TIMESTAMP = 4, "Timestamp";
        PROTOCOL_VERSION_RANGE = 5, "Protocol Version Range";
        REGISTRATION_PERIOD = 6, "Registration Period";
        ENTITY_INDEX = 7, "Entity Index";
        ENTITY_NEXT_INDEX = 8, "Entity Next Index";
        PORTAL_IP = 16, "Portal IP Address";
        PORTAL_PORT = 17, "Portal TCP/UDP Port";
        PORTAL_SYMBOLIC_NAME = 18, "Portal Symbolic Name";
        ESI_INTERVAL = 19, "ESI Interval";
        ESI_PORT = 20, "ESI Port";
        PORTAL_INDEX = 22, "Portal Index";
        SCN_PORT = 23, "SCN Port";
        PORTAL_NEXT_INDEX = 24, "Portal Next Index";
        ISCSI_NAME = 32, "iSCSI Name";
        ISCSI_NODE_TYPE = 33, "iSCSI Node Type";
        ISCSI_ALIAS = 34, "iSCSI Alias";
        ISCSI_SCN_BITMAP = 35, "iSCSI SCN Bitmap";
        ISCSI_NODE_INDEX = 36, "iSCSI Node Index";
        ISCSI_NODE_NEXT_INDEX = 38, "iSCSI Node Next Index";
        PG_ISCSI_NAME = 48, "PG iSCSI Name";
        PG_PORTAL_IP = 49, "PG Portal IP Addr";
        PG_PORTAL_PORT = 50, "PG Portal TCP/UDP Port";
        PG_TAG = 51, "PG Tag (PGT)";
        PG_INDEX = 52, "PG Index";
        PG_NEXT_INDEX = 53, "PG Next Index";
    }
}

wire_codes! {
    /// The iSCSI Node Type bitmap (tag 33). A node may have several bits set.
    NodeType(u32) {
        TARGET = 0x1, "Target";
        INITIATOR = 0x2, "Initiator";
        CONTROL = 0x4, "Control";
    }
}

impl NodeType {
    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: NodeType) -> bool {
        self.0 & other.0 == other.0
    }
}

wire_codes! {
    /// The iSCSI SCN Bitmap (tag 35, RFC 4171 §6.4.4): which events a registration asks for, and
    /// which happened in a notification. Several bits are usually set.
    ScnBitmap(u32) {
        DD_MEMBER_ADDED = 0x01, "DD member added";
        DD_MEMBER_REMOVED = 0x02, "DD member removed";
        OBJECT_UPDATED = 0x04, "object updated";
        OBJECT_ADDED = 0x08, "object added";
        OBJECT_REMOVED = 0x10, "object removed";
        MANAGEMENT_REGISTRATION = 0x20, "management registration/SCN";
        TARGET_AND_SELF_ONLY = 0x40, "target and self information only";
        INITIATOR_AND_SELF_ONLY = 0x80, "initiator and self information only";
    }
}

impl ScnBitmap {
    /// Every event bit a Control node can use (0x3f): DD membership, object updated, added,
    /// removed, and management registration.
    pub const ALL_EVENTS: ScnBitmap = ScnBitmap(0x3f);

    /// Whether every bit of `other` is set in `self`.
    pub const fn contains(self, other: ScnBitmap) -> bool {
        self.0 & other.0 == other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_round_trip_and_print() {
        let f = Function::from(0x1234);
        assert_eq!(u16::from(f), 0x1234);
        assert_eq!(f.name(), None);
        assert_eq!(f.to_string(), "unknown (4660)");
        assert_eq!(Status(11).to_string(), "Internal Error (11)");
        assert_eq!(Status(4).name(), None);
        assert_eq!(Tag::PG_TAG, Tag(51));
        assert!(matches!(Tag(32), Tag::ISCSI_NAME));
    }

    #[test]
    fn responses_set_bit_15() {
        assert_eq!(
            Function::DEV_ATTR_QRY.response(),
            Function::DEV_ATTR_QRY_RSP
        );
        assert_eq!(Function::SCN.response(), Function::SCN_RSP);
        assert!(Function::SCN_RSP.is_response());
        assert!(!Function::SCN.is_response());
    }

    #[test]
    fn bitmaps() {
        assert!(ScnBitmap(0x0c).contains(ScnBitmap::OBJECT_ADDED));
        assert!(!ScnBitmap(0x0c).contains(ScnBitmap::OBJECT_REMOVED));
        assert!(NodeType(5).contains(NodeType::CONTROL));
    }
}
