//! The write half of the iSCSI interface: portal status, targets, portal groups, target CHAP. Each
//! change runs on
//! the live provider under the subsystem's gate and cross-process lock, is saved at once, and is
//! reported with the VDS result code (success-with-information codes included) and the
//! notifications it raised.
//!
//! A provider whose kind cannot change its array (SendTargets discovery) answers
//! `VDS_E_NOT_SUPPORTED` before anything is loaded, naming the kinds that can.

use vds_api::{MutationReport, NotificationDoc, ObjectRef};
use vds_model::{Error, Hresult, IscsiPortalStatus, SubSystem, Subject, VdsIpAddress};
use vds_secret::Secret;

use crate::{Service, SubsystemSel};

/// A change to an array: one VDS method. `Debug` never shows a secret.
#[derive(Clone, Debug)]
pub enum Change {
    /// `IVdsIscsiPortal::SetStatus` (`online tportal` / `offline tportal`).
    SetPortalStatus {
        /// The portal.
        portal: VdsIpAddress,
        /// `ONLINE` or `OFFLINE` (anything else is `VDS_E_NOT_SUPPORTED`).
        status: IscsiPortalStatus,
    },
    /// `IVdsSubSystemIscsi::CreateTarget` (`create target`).
    CreateTarget {
        /// The iSCSI name, or `None` to have the provider generate one.
        iscsi_name: Option<String>,
        /// The alias (empty for none).
        alias: String,
    },
    /// `IVdsIscsiTarget::Delete` (`delete target`).
    DeleteTarget {
        /// The target.
        iscsi_name: String,
    },
    /// `IVdsIscsiTarget::SetFriendlyName` (`name target`; empty clears).
    SetTargetAlias {
        /// The target.
        iscsi_name: String,
        /// The alias.
        alias: String,
    },
    /// `IVdsIscsiTarget::CreatePortalGroup` (`create tpgroup`).
    CreatePortalGroup {
        /// The target.
        iscsi_name: String,
    },
    /// `IVdsIscsiPortalGroup::Delete` (`delete tpgroup`).
    DeletePortalGroup {
        /// The target.
        iscsi_name: String,
        /// The group's tag.
        tag: u16,
    },
    /// `IVdsIscsiPortalGroup::AddPortal` (`add tportal`).
    AddPortal {
        /// The target.
        iscsi_name: String,
        /// The group's tag.
        tag: u16,
        /// The portal.
        portal: VdsIpAddress,
    },
    /// `IVdsIscsiPortalGroup::RemovePortal` (`remove tportal`).
    RemovePortal {
        /// The target.
        iscsi_name: String,
        /// The group's tag.
        tag: u16,
        /// The portal.
        portal: VdsIpAddress,
    },
    /// `IVdsIscsiTarget::SetSharedSecret` (`chap target set`): the secret initiators must prove.
    SetTargetSharedSecret {
        /// The target.
        iscsi_name: String,
        /// The secret; `None` clears it.
        secret: Option<Secret>,
        /// `None`: the target's default secret; else that initiator's alone.
        initiator: Option<String>,
    },
    /// `IVdsIscsiTarget::RememberInitiatorSharedSecret` (`chap target remember`): the secret the
    /// target proves itself with (mutual CHAP).
    RememberInitiatorSharedSecret {
        /// The target.
        iscsi_name: String,
        /// The initiator whose secret it is.
        initiator: String,
        /// The secret; `None` forgets it.
        secret: Option<Secret>,
    },
}

impl Change {
    /// RFC 7143's limits on what a front end passes through (a CHAP secret of 1 to 1,024 bytes,
    /// an initiator's iSCSI name), checked before anything is asked of an array: `E_INVALIDARG`.
    fn check(&self) -> Result<(), Error> {
        use iscsi_proto::limits;
        let (secret, initiator) = match self {
            Change::SetTargetSharedSecret {
                secret, initiator, ..
            } => (secret.as_ref(), initiator.as_deref()),
            Change::RememberInitiatorSharedSecret {
                secret, initiator, ..
            } => (secret.as_ref(), Some(initiator.as_str())),
            _ => return Ok(()),
        };
        let invalid = |why: String| {
            Err(Error::new(Hresult::E_INVALIDARG)
                .about(Subject::Other("CHAP secret".into()))
                .because(why))
        };
        if let Some(s) = secret {
            if let Err(e) = limits::check_chap_secret(s.expose()) {
                return invalid(e.to_string());
            }
        }
        if let Some(i) = initiator {
            if let Err(e) = limits::check_iscsi_name(i) {
                return invalid(e.to_string());
            }
        }
        Ok(())
    }

    /// The VDS method the change is.
    pub fn operation(&self) -> &'static str {
        match self {
            Change::SetPortalStatus { .. } => "IVdsIscsiPortal::SetStatus",
            Change::CreateTarget { .. } => "IVdsSubSystemIscsi::CreateTarget",
            Change::DeleteTarget { .. } => "IVdsIscsiTarget::Delete",
            Change::SetTargetAlias { .. } => "IVdsIscsiTarget::SetFriendlyName",
            Change::CreatePortalGroup { .. } => "IVdsIscsiTarget::CreatePortalGroup",
            Change::DeletePortalGroup { .. } => "IVdsIscsiPortalGroup::Delete",
            Change::AddPortal { .. } => "IVdsIscsiPortalGroup::AddPortal",
            Change::RemovePortal { .. } => "IVdsIscsiPortalGroup::RemovePortal",
            Change::SetTargetSharedSecret { .. } => "IVdsIscsiTarget::SetSharedSecret",
            Change::RememberInitiatorSharedSecret { .. } => {
                "IVdsIscsiTarget::RememberInitiatorSharedSecret"
            }
        }
    }
}

/// Runs `change` on `sub`: the code it answered and the object it made or returned.
async fn apply(sub: &SubSystem, change: &Change) -> Result<(Hresult, Option<ObjectRef>), Error> {
    let group_ref = |iqn: &str, g: &vds_model::PortalGroup| -> Result<ObjectRef, Error> {
        let p = g.get_properties()?;
        Ok(ObjectRef {
            kind: "portal_group".into(),
            id: p.id.to_string(),
            iscsi_name: iqn.to_string(),
            tag: Some(p.tag),
        })
    };
    match change {
        Change::SetPortalStatus { portal, status } => {
            sub.portal_by_address(portal)?.set_status(*status).await?;
            Ok((Hresult::S_OK, None))
        }
        Change::CreateTarget { iscsi_name, alias } => {
            let t = sub.create_target(iscsi_name.as_deref(), alias).await?;
            let p = t.get_properties()?;
            Ok((
                Hresult::S_OK,
                Some(ObjectRef {
                    kind: "target".into(),
                    id: p.id.to_string(),
                    iscsi_name: p.iscsi_name,
                    tag: None,
                }),
            ))
        }
        Change::DeleteTarget { iscsi_name } => {
            sub.target_by_name(iscsi_name)?.delete().await?;
            Ok((Hresult::S_OK, None))
        }
        Change::SetTargetAlias { iscsi_name, alias } => {
            sub.target_by_name(iscsi_name)?
                .set_friendly_name(alias)
                .await?;
            Ok((Hresult::S_OK, None))
        }
        Change::CreatePortalGroup { iscsi_name } => {
            let t = sub.target_by_name(iscsi_name)?;
            let name = t.get_properties()?.iscsi_name;
            let (g, code) = t.create_portal_group().await?;
            Ok((code, Some(group_ref(&name, &g)?)))
        }
        Change::DeletePortalGroup { iscsi_name, tag } => {
            sub.target_by_name(iscsi_name)?
                .portal_group_by_tag(*tag)?
                .delete()
                .await?;
            Ok((Hresult::S_OK, None))
        }
        Change::AddPortal {
            iscsi_name,
            tag,
            portal,
        } => {
            let p = sub.portal_by_address(portal)?;
            sub.target_by_name(iscsi_name)?
                .portal_group_by_tag(*tag)?
                .add_portal(p.id())
                .await?;
            Ok((Hresult::S_OK, None))
        }
        Change::RemovePortal {
            iscsi_name,
            tag,
            portal,
        } => {
            let p = sub.portal_by_address(portal)?;
            sub.target_by_name(iscsi_name)?
                .portal_group_by_tag(*tag)?
                .remove_portal(p.id())
                .await?;
            Ok((Hresult::S_OK, None))
        }
        Change::SetTargetSharedSecret {
            iscsi_name,
            secret,
            initiator,
        } => {
            sub.target_by_name(iscsi_name)?
                .set_shared_secret(secret.as_ref(), initiator.as_deref())
                .await?;
            Ok((Hresult::S_OK, None))
        }
        Change::RememberInitiatorSharedSecret {
            iscsi_name,
            initiator,
            secret,
        } => {
            sub.target_by_name(iscsi_name)?
                .remember_initiator_shared_secret(initiator, secret.as_ref())
                .await?;
            Ok((Hresult::S_OK, None))
        }
    }
}

impl Service {
    /// Makes `change` on subsystem `sel`'s array (see the module documentation). The report carries
    /// the code VDS answered (`S_OK`, or a success-with-information code such as
    /// `VDS_S_ALREADY_EXISTS`), the object made or returned, and the notifications raised; a failure
    /// is the model's error, about the object concerned.
    pub async fn change(
        &self,
        sel: &SubsystemSel,
        change: Change,
    ) -> Result<MutationReport, Error> {
        change.check()?;
        let provider = self.resolve(sel)?;
        let config = self.inner.provider_config(&provider)?;
        let kind = crate::providers::kind_named(&config.kind)?;
        if !kind.info().manages_arrays {
            let can: Vec<&str> = vds_providers::kinds()
                .iter()
                .filter(|k| k.info().manages_arrays)
                .map(|k| k.info().name)
                .collect();
            return Err(Error::new(Hresult::VDS_E_NOT_SUPPORTED)
                .about(Subject::Subsystem(sel.name.clone()))
                .because(format!(
                    "its provider {provider:?} is of kind {:?}, which cannot change an array; \
                     kinds that can: {}",
                    config.kind,
                    can.join(", ")
                )));
        }
        let _lock = self.inner.store.lock_subsystem(&provider, &sel.name)?;
        let entry = self.inner.live_entry(&provider)?;
        let model = &entry.model;
        let sub = model.sub_system_by_key(&sel.name)?;
        let id = sub.id();
        self.inner.captures().insert(id, Vec::new());
        let result = apply(&sub, &change).await;
        let raised = self.inner.captures().remove(&id).unwrap_or_default();
        let saved = match model.export_subsystem(id) {
            Some(snapshot) => {
                self.inner
                    .save(model, &provider, vec![snapshot], model.cache_health())
                    .await
            }
            None => Ok(()),
        };
        self.inner.deliver(&provider, None);
        let (code, object) = result?;
        saved?;
        let hr = vds_model::Error::new(code);
        Ok(MutationReport {
            operation: change.operation().to_string(),
            provider: provider.clone(),
            subsystem: sel.name.clone(),
            hresult: hr.code_hex(),
            name: hr.code_name(),
            object,
            notifications: raised
                .iter()
                .map(|n| NotificationDoc::new(&provider, n))
                .collect(),
        })
    }
}
