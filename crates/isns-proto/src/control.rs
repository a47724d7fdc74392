//! The registration of a Control node (reference §4): the entity, optionally one portal whose IP
//! and SCN port are where the server delivers SCNs, and the node with type Control (4). A Control
//! node sees every object whatever the discovery-domain settings (§2) and may register for SCNs
//! (which needs the portal with its SCN port). Without a portal, open-isns registers the entity
//! and the node all the same; a registration without `replace` updates an existing one and keeps
//! what it does not name (an SCN port registered by another process of ours, say) and renews
//! the registration period.

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
    /// The portal registered with the node, if any.
    pub portal: Option<ControlPortal>,
    /// Registration period in seconds (tag 6); `None` leaves the server's default (open-isns:
    /// its `RegistrationPeriod`, after which the registration expires unless refreshed).
    pub registration_period: Option<u32>,
}

/// The portal of a Control node: where the server delivers SCNs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ControlPortal {
    /// The portal's IP address: where the server connects to deliver SCNs.
    pub ip: IpAddr,
    /// The portal's port (a portal needs one; we serve no iSCSI there).
    pub port: u16,
    /// The SCN port on `ip`; `None` registers no SCN port (SCNReg then gets status 17).
    pub scn_port: Option<u16>,
}

impl ControlNode {
    /// DevAttrReg: key EID; operating EID, protocol iSCSI, [registration period], [portal IP,
    /// portal port, [SCN port]], name, node type Control. `replace` sets the REPLACE flag (drop our
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
        if let Some(portal) = &self.portal {
            op.push(Attribute::ip(Tag::PORTAL_IP, portal.ip));
            op.push(Attribute::port(Tag::PORTAL_PORT, Port::tcp(portal.port)));
            if let Some(p) = portal.scn_port {
                op.push(Attribute::port(Tag::SCN_PORT, Port::tcp(p)));
            }
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

/// The registration period (seconds) a DevAttrReg reply grants our entity (its tag 6), when the
/// server says one: open-isns does whenever its `RegistrationPeriod` is not 0, and drops the
/// entity when that time passes without a new registration.
pub fn granted_period(reply: &Message) -> Option<u32> {
    reply
        .operating()
        .iter()
        .find(|a| a.tag == Tag::REGISTRATION_PERIOD)
        .and_then(Attribute::as_u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::Status;

    fn node(portal: Option<ControlPortal>) -> ControlNode {
        ControlNode {
            name: "iqn.2026-12.test.vds:ctl".into(),
            entity_id: "vds-ctl".into(),
            portal,
            registration_period: None,
        }
    }

    #[test]
    fn a_control_node_without_a_portal_registers_entity_and_node_only() {
        let m = node(None).registration(false);
        let tags: Vec<u32> = m.operating().iter().map(|a| a.tag.0).collect();
        assert_eq!(tags, vec![1, 2, 32, 33]);
        assert_eq!(
            m.key(),
            &[Attribute::string(Tag::ENTITY_IDENTIFIER, "vds-ctl")]
        );
        assert!(!m.flags.contains(crate::Flags::REPLACE));
        let with = node(Some(ControlPortal {
            ip: IpAddr::from([127, 0, 0, 1]),
            port: 3206,
            scn_port: Some(3206),
        }))
        .registration(true);
        let tags: Vec<u32> = with.operating().iter().map(|a| a.tag.0).collect();
        assert_eq!(tags, vec![1, 2, 16, 17, 23, 32, 33]);
        assert!(with.flags.contains(crate::Flags::REPLACE));
    }

    #[test]
    fn the_granted_period_is_read_from_the_reply() {
        let req = node(None).registration(false);
        let reply = Message::response_to(
            &req,
            Status::SUCCESSFUL,
            vec![
                Attribute::string(Tag::ENTITY_IDENTIFIER, "vds-ctl"),
                Attribute::DELIMITER,
                Attribute::string(Tag::ENTITY_IDENTIFIER, "vds-ctl"),
                Attribute::u32(Tag::REGISTRATION_PERIOD, 600),
            ],
        );
        assert_eq!(granted_period(&reply), Some(600));
        let bare = Message::response_to(&req, Status::SUCCESSFUL, vec![]);
        assert_eq!(granted_period(&bare), None);
    }
}
