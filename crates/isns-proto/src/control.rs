//! The registration of a Control node (reference §4): the entity, one portal whose IP and SCN
//! port are where the server delivers SCNs, and the node with type Control (4). A Control node
//! sees every object whatever the discovery-domain settings (§2) and may register for SCNs.

use std::net::IpAddr;

use crate::codes::{NodeType, ScnBitmap, Tag};
use crate::message::Message;
use crate::wire::{Attribute, Port};

/// Entity Protocol value for iSCSI.
pub const ENTITY_PROTOCOL_ISCSI: u32 = 2;

/// Who we are when registered as a Control node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ControlNode {
    /// Our iSCSI name: the Source of every request and the node registered.
    pub name: String,
    /// Our entity identifier.
    pub entity_id: String,
    /// The portal's IP address: where the server connects to deliver SCNs.
    pub portal_ip: IpAddr,
    /// The portal's port (a portal needs one; we serve no iSCSI there).
    pub portal_port: u16,
    /// The SCN port on `portal_ip`; `None` registers no SCN port (SCNReg then gets status 17).
    pub scn_port: Option<u16>,
    /// Registration period in seconds (tag 6); `None` leaves the server's default (open-isns:
    /// its `RegistrationPeriod`, after which the registration expires unless refreshed).
    pub registration_period: Option<u32>,
}

impl ControlNode {
    /// DevAttrReg: key EID; operating EID, protocol iSCSI, [registration period], portal IP,
    /// portal port, [SCN port], name, node type Control. `replace` sets the REPLACE flag (drop our
    /// previous registration of this entity first).
    pub fn registration(&self, replace: bool) -> Message {
        let eid = Attribute::string(Tag::ENTITY_IDENTIFIER, self.entity_id.as_str());
        let mut op = vec![
            eid.clone(),
            Attribute::u32(Tag::ENTITY_PROTOCOL, ENTITY_PROTOCOL_ISCSI),
        ];
        if let Some(p) = self.registration_period {
            op.push(Attribute::u32(Tag::REGISTRATION_PERIOD, p));
        }
        op.push(Attribute::ip(Tag::PORTAL_IP, self.portal_ip));
        op.push(Attribute::port(
            Tag::PORTAL_PORT,
            Port::tcp(self.portal_port),
        ));
        if let Some(p) = self.scn_port {
            op.push(Attribute::port(Tag::SCN_PORT, Port::tcp(p)));
        }
        op.push(Attribute::string(Tag::ISCSI_NAME, self.name.as_str()));
        op.push(Attribute::u32(Tag::ISCSI_NODE_TYPE, NodeType::CONTROL.0));
        Message::dev_attr_reg(&self.name, vec![eid], op, replace)
    }

    /// DevDereg of our entity (and so of our node and portal).
    pub fn deregistration(&self) -> Message {
        Message::dev_dereg(
            &self.name,
            vec![Attribute::string(
                Tag::ENTITY_IDENTIFIER,
                self.entity_id.as_str(),
            )],
        )
    }

    /// SCNReg of our node for `bitmap`.
    pub fn scn_registration(&self, bitmap: ScnBitmap) -> Message {
        Message::scn_reg(&self.name, &self.name, bitmap)
    }

    /// SCNDereg of our node.
    pub fn scn_deregistration(&self) -> Message {
        Message::scn_dereg(&self.name, &self.name)
    }
}
