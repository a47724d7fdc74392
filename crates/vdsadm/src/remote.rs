//! One writer: while vdsd serves the store, a command goes to the daemon instead of opening the
//! store. The daemon answers each call with the document the service would have returned (the
//! same `vds-api` types), and an error body that [`vds_client`] turns back into the same error,
//! so vdsadm prints the same output and exits with the same status either way.
//!
//! The daemon is found through the store: vdsd holds `<store>/locks/vdsd.lock` and names its
//! socket in `<store>/vdsd.socket` ([`vds_store::daemon::served_by`]). With `--sim` there is no
//! store, and `discover`, `completions` and `man` never need one: they stay local.
//!
//! Calls that contact arrays are operations in the daemon (`IVdsAsync`): vdsadm starts one, waits
//! for it (each wait at most 30 s, as the API allows, for at most [`OPERATION_DEADLINE`] in all)
//! and prints what it produced. Interrupting vdsadm does not stop the operation: the daemon
//! finishes it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::Value;
use vds_api::{ErrorBody, NotificationDoc};
use vds_client::{Answer, Client, EventStream, segment};
use vds_model::{Error, Hresult, Subject, VdsIpAddress};

use crate::args::Sel;
use crate::error::{CliError, CliResult};

/// How long vdsadm waits for an operation it started in the daemon.
pub const OPERATION_DEADLINE: Duration = Duration::from_secs(3600);

/// The daemon serving the store, and a runtime to talk to it.
pub struct Remote {
    client: Client,
    rt: tokio::runtime::Runtime,
}

/// `HOST:PORT` as the API takes a portal (IPv6 in brackets, its scope after `%`).
pub fn portal_text(a: &VdsIpAddress) -> String {
    if a.address_type() == vds_model::IpAddressType::IPV6 {
        format!("[{}]:{}", a.host(), a.port())
    } else {
        format!("{}:{}", a.host(), a.port())
    }
}

impl Remote {
    /// The daemon serving the store at `root`, when one does.
    pub fn find(root: &std::path::Path) -> CliResult<Option<Remote>> {
        let Some(socket) = vds_store::daemon::served_by(root) else {
            return Ok(None);
        };
        tracing::info!(socket = %socket.display(), "vdsd serves the store: sending the command to it");
        Ok(Some(Remote::at(socket)?))
    }

    fn at(socket: PathBuf) -> CliResult<Remote> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .max_io_events_per_tick(crate::commands::CLI_IO_EVENTS)
            .enable_all()
            .build()
            .map_err(|e| {
                CliError::with_cause(Hresult::from_io_error(&e), "runtime", e.to_string())
            })?;
        Ok(Remote {
            client: Client::new(socket),
            rt,
        })
    }

    /// `/v1/subsystems/{name}{rest}`.
    pub fn subsystem(sel: &Sel, rest: &str) -> String {
        format!("/v1/subsystems/{}{rest}", segment(&sel.name))
    }

    /// `/v1/subsystems/{name}/targets/{iqn}{rest}`.
    pub fn target(sel: &Sel, iqn: &str, rest: &str) -> String {
        Remote::subsystem(sel, &format!("/targets/{}{rest}", segment(iqn)))
    }

    /// `path` with `?provider=` when a provider is named.
    pub fn with_provider(path: &str, provider: Option<&str>) -> String {
        match provider {
            Some(p) => format!(
                "{path}{}provider={}",
                if path.contains('?') { '&' } else { '?' },
                segment(p)
            ),
            None => path.to_string(),
        }
    }

    /// One request answered with success, or the daemon's error.
    fn succeed(&self, method: &str, path: &str, body: Option<Value>) -> Result<Answer, Error> {
        let answer = self
            .rt
            .block_on(self.client.request(method, path, body.as_ref()))?;
        if !answer.is_success() {
            return Err(answer.error());
        }
        Ok(answer)
    }

    /// One request whose answer is a document (200), or the daemon's error.
    fn call_value(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Error> {
        self.succeed(method, path, body)?.json::<Value>()
    }

    /// `GET path` (or another call answered at once): the document, read from the answer
    /// straight into its type (a list of 5,000 subsystems is 1.6 MB of JSON: no tree of it).
    pub fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> CliResult<T> {
        read_document(&self.succeed(method, path, body)?.body, path)
    }

    /// `GET path`.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> CliResult<T> {
        self.call("GET", path, None)
    }

    /// Starts an operation and waits for it: what it produced, or its error.
    pub fn operation<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> CliResult<T> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut op = self.call_value(method, &format!("{path}{sep}wait=30"), body)?;
        let end = Instant::now() + OPERATION_DEADLINE;
        while op["state"] == "RUNNING" {
            let id = op["id"].as_str().unwrap_or_default().to_string();
            if Instant::now() >= end {
                return Err(CliError::from(
                    Error::new(Hresult::VDS_E_TIMEOUT)
                        .about(Subject::Other(format!("vdsd operation {id}")))
                        .because(format!(
                            "still running after {} s; it goes on in vdsd: \
                             GET /v1/operations/{id} says how it ends",
                            OPERATION_DEADLINE.as_secs()
                        )),
                ));
            }
            op = self.call_value(
                "GET",
                &format!("/v1/operations/{}?wait=30", segment(&id)),
                None,
            )?;
        }
        ended(op, path)
    }

    /// The daemon's event stream (`/v1/events`, of `provider` when given), and the runtime that
    /// reads it.
    pub fn events(
        &self,
        provider: Option<&str>,
    ) -> CliResult<(EventStream, &tokio::runtime::Runtime)> {
        let path = Remote::with_provider("/v1/events", provider);
        let stream = self.rt.block_on(self.client.events(&path, None))?;
        Ok((stream, &self.rt))
    }
}

/// A credential as the API takes it: the secret as text (the file's bytes must be UTF-8 to cross
/// the API; they are never printed).
pub fn credential(c: &crate::args::ChapCredential) -> CliResult<vds_api::CredentialDoc> {
    let secret = std::str::from_utf8(c.secret.expose()).map_err(|_| {
        CliError::from(
            Error::new(Hresult::E_INVALIDARG)
                .about(Subject::Other(format!("the CHAP secret of {:?}", c.user)))
                .because("vdsd serves this store, and only a secret that is UTF-8 text can be sent to it"),
        )
    })?;
    Ok(vds_api::CredentialDoc {
        user: c.user.clone(),
        secret: secret.to_string(),
    })
}

/// A kind's settings as the API takes them.
pub fn settings(
    table: &toml::Table,
) -> CliResult<std::collections::BTreeMap<String, vds_api::SettingValue>> {
    use vds_api::SettingValue;
    table
        .iter()
        .map(|(k, v)| {
            let value = match v {
                toml::Value::Integer(i) => SettingValue::Integer(*i),
                toml::Value::Boolean(b) => SettingValue::Bool(*b),
                toml::Value::String(t) => SettingValue::Text(t.clone()),
                other => {
                    return Err(CliError::from(
                        Error::new(Hresult::E_INVALIDARG)
                            .about(Subject::Other(format!("setting {k:?}")))
                            .because(format!("{other} cannot be sent to vdsd")),
                    ));
                }
            };
            Ok((k.clone(), value))
        })
        .collect()
}

/// A JSON value of a request document.
pub fn body<T: serde::Serialize>(doc: &T) -> Option<Value> {
    serde_json::to_value(doc).ok()
}

/// The notification an event of `/v1/events` carries, if it is one.
pub fn notification(data: &str) -> Option<NotificationDoc> {
    serde_json::from_str(data).ok()
}

/// What an operation that ended produced: its output, or its error. Anything else the daemon
/// answered (not an object, no error) is bad data, never a panic.
fn ended<T: DeserializeOwned>(mut op: Value, path: &str) -> CliResult<T> {
    let mut field = |name: &str| op.get_mut(name).map(Value::take).unwrap_or_default();
    let state = field("state");
    if state == "SUCCEEDED" {
        return decode(field("output"), path);
    }
    let body: ErrorBody = serde_json::from_value(field("error")).map_err(|e| {
        CliError::from(
            Error::new(Hresult::VDS_E_BAD_PROVIDER_DATA)
                .about(Subject::Other("vdsd".into()))
                .because(format!("an operation ended {state} without an error: {e}")),
        )
    })?;
    Err(CliError::from(vds_client::error_from_body(&body)))
}

/// The document an answer to `path` holds: JSON of another shape is bad data from the daemon
/// (as [`decode`] says), and what is not JSON at all is what [`Answer::json`] says it is.
fn read_document<T: DeserializeOwned>(body: &[u8], path: &str) -> CliResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            not_the_document(path, &e)
        } else {
            CliError::from(vds_client::not_json(&e))
        }
    })
}

fn decode<T: DeserializeOwned>(v: Value, path: &str) -> CliResult<T> {
    serde_json::from_value(v).map_err(|e| not_the_document(path, &e))
}

fn not_the_document(path: &str, e: &serde_json::Error) -> CliError {
    CliError::from(
        Error::new(Hresult::VDS_E_BAD_PROVIDER_DATA)
            .about(Subject::Other("vdsd".into()))
            .because(format!(
                "the answer to {path} is not the expected document: {e}"
            )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use vds_api::PortalRow;

    /// The same bytes read through a `Value`, as every answer was before.
    fn through_a_value<T: DeserializeOwned>(body: &[u8], path: &str) -> CliResult<T> {
        let v = Answer {
            status: 200,
            headers: Vec::new(),
            body: body.to_vec(),
        }
        .json::<Value>()?;
        decode(v, path)
    }

    #[test]
    fn a_document_read_straight_is_the_one_read_through_a_value() {
        let body = br#"[{"index":0,"id":"6f1e0f5c-0000-5000-8000-000000000001","address":"192.0.2.1","port":3260,"address_type":"IPV4","status":"ONLINE"}]"#;
        let direct: Vec<PortalRow> = read_document(body, "/p").expect("direct");
        let old: Vec<PortalRow> = through_a_value(body, "/p").expect("through a value");
        assert_eq!(direct, old);
        assert_eq!(direct[0].port, 3260);
    }

    #[test]
    fn an_operation_ends_with_its_output_its_error_or_bad_data() {
        let done = serde_json::json!({"state": "SUCCEEDED", "output": [
            {"index": 0, "id": "x", "address": "192.0.2.1", "port": 3260,
             "address_type": "IPV4", "status": "ONLINE"}]});
        let rows: Vec<PortalRow> = ended(done, "/p").expect("output");
        assert_eq!(rows[0].address, "192.0.2.1");
        let failed = serde_json::json!({"state": "FAILED", "error": {
            "hresult": "0x80042404", "name": "VDS_E_ANOTHER_CALL_IN_PROGRESS",
            "message": "another operation is in progress"}});
        let e = ended::<Vec<PortalRow>>(failed, "/p").unwrap_err();
        assert_eq!(e.error.code(), Hresult::VDS_E_ANOTHER_CALL_IN_PROGRESS);
        // What no daemon of ours sends: said as bad data, not a panic.
        for odd in [
            serde_json::json!([]),
            serde_json::json!("x"),
            serde_json::json!(42),
            serde_json::json!({"state": "FAILED"}),
        ] {
            let e = ended::<Vec<PortalRow>>(odd.clone(), "/p").unwrap_err();
            assert_eq!(
                e.error.code(),
                Hresult::VDS_E_BAD_PROVIDER_DATA,
                "{odd}: {e}"
            );
        }
    }

    #[test]
    fn a_wrong_shape_is_bad_data_and_a_broken_answer_is_unexpected() {
        let wrong = read_document::<Vec<PortalRow>>(br#"{"rows":[]}"#, "/v1/x").unwrap_err();
        assert_eq!(wrong.error.code(), Hresult::VDS_E_BAD_PROVIDER_DATA);
        assert!(
            wrong
                .error
                .to_string()
                .contains("the answer to /v1/x is not the expected document"),
            "{wrong}"
        );
        for broken in [&br#"[{"id":"#[..], b"<html>", b""] {
            let e = read_document::<Vec<PortalRow>>(broken, "/v1/x").unwrap_err();
            assert_eq!(e.error.code(), Hresult::E_UNEXPECTED, "{e}");
            assert!(e.error.to_string().contains("not the expected JSON"), "{e}");
        }
    }
}
