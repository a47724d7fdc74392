//! Notifications (`VDS_NOTIFICATION`): what the model reports when objects arrive, depart or change,
//! and the object-type and async-output values that go with them.
//!
//! A notification carries only an object id; the receiver asks the model for the object. Sinks are
//! registered with [`crate::HwProvider::advise`].

use crate::ObjectId;

/// `VDS_NF_*`: the event of a notification.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct NotificationEvent(pub u32);

impl NotificationEvent {
    /// `VDS_NF_SUB_SYSTEM_ARRIVE`
    pub const SUB_SYSTEM_ARRIVE: NotificationEvent = NotificationEvent(101);
    /// `VDS_NF_SUB_SYSTEM_DEPART`
    pub const SUB_SYSTEM_DEPART: NotificationEvent = NotificationEvent(102);
    /// `VDS_NF_SUB_SYSTEM_MODIFY`
    pub const SUB_SYSTEM_MODIFY: NotificationEvent = NotificationEvent(151);
    /// `VDS_NF_PORT_ARRIVE`
    pub const PORT_ARRIVE: NotificationEvent = NotificationEvent(121);
    /// `VDS_NF_PORT_DEPART`
    pub const PORT_DEPART: NotificationEvent = NotificationEvent(122);
    /// `VDS_NF_PORTAL_ARRIVE`
    pub const PORTAL_ARRIVE: NotificationEvent = NotificationEvent(123);
    /// `VDS_NF_PORTAL_DEPART`
    pub const PORTAL_DEPART: NotificationEvent = NotificationEvent(124);
    /// `VDS_NF_PORTAL_MODIFY`
    pub const PORTAL_MODIFY: NotificationEvent = NotificationEvent(125);
    /// `VDS_NF_TARGET_ARRIVE`
    pub const TARGET_ARRIVE: NotificationEvent = NotificationEvent(126);
    /// `VDS_NF_TARGET_DEPART`
    pub const TARGET_DEPART: NotificationEvent = NotificationEvent(127);
    /// `VDS_NF_TARGET_MODIFY`
    pub const TARGET_MODIFY: NotificationEvent = NotificationEvent(128);
    /// `VDS_NF_PORTAL_GROUP_ARRIVE`
    pub const PORTAL_GROUP_ARRIVE: NotificationEvent = NotificationEvent(129);
    /// `VDS_NF_PORTAL_GROUP_DEPART`
    pub const PORTAL_GROUP_DEPART: NotificationEvent = NotificationEvent(130);
    /// `VDS_NF_PORTAL_GROUP_MODIFY`
    pub const PORTAL_GROUP_MODIFY: NotificationEvent = NotificationEvent(131);
    /// `VDS_NF_SERVICE_OUT_OF_SYNC`
    pub const SERVICE_OUT_OF_SYNC: NotificationEvent = NotificationEvent(301);
    /// `VDS_NF_PORT_MODIFY`
    pub const PORT_MODIFY: NotificationEvent = NotificationEvent(352);
    /// `VDS_NF_PORT_REMOVED`
    pub const PORT_REMOVED: NotificationEvent = NotificationEvent(353);

    /// The VDS name (`PORTAL_ARRIVE`), or `UNKNOWN(n)`.
    pub fn name(self) -> String {
        let name = match self {
            Self::SUB_SYSTEM_ARRIVE => "SUB_SYSTEM_ARRIVE",
            Self::SUB_SYSTEM_DEPART => "SUB_SYSTEM_DEPART",
            Self::SUB_SYSTEM_MODIFY => "SUB_SYSTEM_MODIFY",
            Self::PORT_ARRIVE => "PORT_ARRIVE",
            Self::PORT_DEPART => "PORT_DEPART",
            Self::PORTAL_ARRIVE => "PORTAL_ARRIVE",
            Self::PORTAL_DEPART => "PORTAL_DEPART",
            Self::PORTAL_MODIFY => "PORTAL_MODIFY",
            Self::TARGET_ARRIVE => "TARGET_ARRIVE",
            Self::TARGET_DEPART => "TARGET_DEPART",
            Self::TARGET_MODIFY => "TARGET_MODIFY",
            Self::PORTAL_GROUP_ARRIVE => "PORTAL_GROUP_ARRIVE",
            Self::PORTAL_GROUP_DEPART => "PORTAL_GROUP_DEPART",
            Self::PORTAL_GROUP_MODIFY => "PORTAL_GROUP_MODIFY",
            Self::SERVICE_OUT_OF_SYNC => "SERVICE_OUT_OF_SYNC",
            Self::PORT_MODIFY => "PORT_MODIFY",
            Self::PORT_REMOVED => "PORT_REMOVED",
            NotificationEvent(n) => return format!("UNKNOWN({n})"),
        };
        name.to_string()
    }
}

/// `VDS_NOTIFICATION_TARGET_TYPE` (`VDS_NTT_*`): the kind of object a notification is about.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct NotificationTargetType(pub i32);

impl NotificationTargetType {
    /// `VDS_NTT_SUB_SYSTEM`
    pub const SUB_SYSTEM: NotificationTargetType = NotificationTargetType(30);
    /// `VDS_NTT_PORT`
    pub const PORT: NotificationTargetType = NotificationTargetType(35);
    /// `VDS_NTT_PORTAL`
    pub const PORTAL: NotificationTargetType = NotificationTargetType(36);
    /// `VDS_NTT_TARGET`
    pub const TARGET: NotificationTargetType = NotificationTargetType(37);
    /// `VDS_NTT_PORTAL_GROUP`
    pub const PORTAL_GROUP: NotificationTargetType = NotificationTargetType(38);
    /// `VDS_NTT_SERVICE`
    pub const SERVICE: NotificationTargetType = NotificationTargetType(200);
}

/// `VDS_OBJECT_TYPE`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ObjectType(pub i32);

impl ObjectType {
    /// `VDS_OT_PROVIDER`
    pub const PROVIDER: ObjectType = ObjectType(1);
    /// `VDS_OT_SUB_SYSTEM`
    pub const SUB_SYSTEM: ObjectType = ObjectType(30);
    /// `VDS_OT_CONTROLLER`
    pub const CONTROLLER: ObjectType = ObjectType(31);
    /// `VDS_OT_DRIVE`
    pub const DRIVE: ObjectType = ObjectType(32);
    /// `VDS_OT_LUN`
    pub const LUN: ObjectType = ObjectType(33);
    /// `VDS_OT_LUN_PLEX`
    pub const LUN_PLEX: ObjectType = ObjectType(34);
    /// `VDS_OT_PORT`
    pub const PORT: ObjectType = ObjectType(35);
    /// `VDS_OT_PORTAL`
    pub const PORTAL: ObjectType = ObjectType(36);
    /// `VDS_OT_TARGET`
    pub const TARGET: ObjectType = ObjectType(37);
    /// `VDS_OT_PORTAL_GROUP`
    pub const PORTAL_GROUP: ObjectType = ObjectType(38);
    /// `VDS_OT_STORAGE_POOL`
    pub const STORAGE_POOL: ObjectType = ObjectType(39);
    /// `VDS_OT_HBAPORT`
    pub const HBAPORT: ObjectType = ObjectType(90);
    /// `VDS_OT_INIT_ADAPTER`
    pub const INIT_ADAPTER: ObjectType = ObjectType(91);
    /// `VDS_OT_INIT_PORTAL`
    pub const INIT_PORTAL: ObjectType = ObjectType(92);
    /// `VDS_OT_ASYNC`
    pub const ASYNC: ObjectType = ObjectType(100);
    /// `VDS_OT_ENUM`
    pub const ENUM: ObjectType = ObjectType(101);
    /// `VDS_OT_VDISK`
    pub const VDISK: ObjectType = ObjectType(200);
    /// `VDS_OT_OPEN_VDISK`
    pub const OPEN_VDISK: ObjectType = ObjectType(201);
}

/// `VDS_ASYNC_OUTPUT_TYPE`, the iSCSI part: what an asynchronous operation produced.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct AsyncOutputType(pub i32);

impl AsyncOutputType {
    /// `VDS_ASYNCOUT_LOGINTOTARGET`
    pub const LOGINTOTARGET: AsyncOutputType = AsyncOutputType(60);
    /// `VDS_ASYNCOUT_LOGOUTFROMTARGET`
    pub const LOGOUTFROMTARGET: AsyncOutputType = AsyncOutputType(61);
    /// `VDS_ASYNCOUT_CREATETARGET`
    pub const CREATETARGET: AsyncOutputType = AsyncOutputType(62);
    /// `VDS_ASYNCOUT_CREATEPORTALGROUP`
    pub const CREATEPORTALGROUP: AsyncOutputType = AsyncOutputType(63);
    /// `VDS_ASYNCOUT_DELETETARGET`
    pub const DELETETARGET: AsyncOutputType = AsyncOutputType(64);
    /// `VDS_ASYNCOUT_ADDPORTAL`
    pub const ADDPORTAL: AsyncOutputType = AsyncOutputType(65);
    /// `VDS_ASYNCOUT_REMOVEPORTAL`
    pub const REMOVEPORTAL: AsyncOutputType = AsyncOutputType(66);
    /// `VDS_ASYNCOUT_DELETEPORTALGROUP`
    pub const DELETEPORTALGROUP: AsyncOutputType = AsyncOutputType(67);
}

/// One notification: `VDS_NOTIFICATION` with its per-kind payload (`VDS_PORTAL_NOTIFICATION` …),
/// which for every kind here is an event and an object id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub struct Notification {
    /// `objectType`.
    pub object_type: NotificationTargetType,
    /// `ulEvent`.
    pub event: NotificationEvent,
    /// The id of the object the event is about.
    pub id: ObjectId,
    /// The id of the subsystem the object belongs to (the object itself for subsystem events), so
    /// that a receiver can filter by subsystem even after the object departed. Not part of
    /// `VDS_NOTIFICATION`.
    pub subsystem: ObjectId,
}
