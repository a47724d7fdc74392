//! Asynchronous operations, as VDS's `IVdsAsync`: a request that contacts arrays (refresh,
//! reenumerate, every change, a registration) starts an operation and answers `202` with its
//! resource; `QueryStatus` reads it, `Wait` waits for it with a deadline, `Cancel` stops it.
//!
//! Each operation is one tokio task running one service call. Cancel aborts the task: allowed for
//! refresh and reenumerate (what they committed is saved subsystem by subsystem, what they had not
//! reached stays as it was) and refused with `VDS_E_CANCEL_TOO_LATE` for changes, which may already
//! have reached the array. The registry is bounded: at most [`MAX_RUNNING`] run at once (more are
//! refused with `HRESULT_FROM_WIN32(ERROR_BUSY)`), and the oldest finished ones are forgotten
//! beyond [`MAX_KEPT`].

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use uuid::Uuid;
use vds_api::{ErrorBody, OperationDoc, OperationOutput, OperationState};
use vds_model::{Error, Hresult};

/// The most operations running at once.
pub const MAX_RUNNING: usize = 256;
/// The most finished operations kept for `QueryStatus`.
pub const MAX_KEPT: usize = 1024;

struct Status {
    state: OperationState,
    finished_at: Option<SystemTime>,
    result: Option<Result<OperationOutput, Error>>,
}

/// One operation.
pub struct Operation {
    id: Uuid,
    operation: String,
    started_at: SystemTime,
    cancelable: bool,
    status: Mutex<Status>,
    done: watch::Sender<bool>,
    abort: Mutex<Option<tokio::task::AbortHandle>>,
}

fn stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl Operation {
    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// True once it finished (succeeded, failed or was cancelled).
    pub fn is_done(&self) -> bool {
        *self.done.borrow()
    }

    /// `QueryStatus`: the resource.
    pub fn doc(&self) -> OperationDoc {
        let s = self.status();
        let (code, error, output) = match &s.result {
            None if s.state == OperationState::Canceled => {
                (Error::new(Hresult::VDS_E_OPERATION_CANCELED), None, None)
            }
            None => (Error::new(Hresult::VDS_E_OPERATION_PENDING), None, None),
            Some(Ok(out)) => (Error::new(output_code(out)), None, Some(out.clone())),
            Some(Err(e)) => (e.clone(), Some(ErrorBody::with_subject(e)), None),
        };
        OperationDoc {
            id: self.id.to_string(),
            operation: self.operation.clone(),
            state: s.state,
            percent: if s.state == OperationState::Running {
                0
            } else {
                100
            },
            hresult: code.code_hex(),
            name: code.code_name(),
            started_at: stamp(self.started_at),
            finished_at: s.finished_at.map(stamp),
            cancelable: self.cancelable && s.state == OperationState::Running,
            error,
            output,
        }
    }

    /// `Wait`: until it is done or `deadline` passed; true when done.
    pub async fn wait(&self, deadline: Duration) -> bool {
        let mut rx = self.done.subscribe();
        matches!(
            tokio::time::timeout(deadline, rx.wait_for(|d| *d)).await,
            Ok(Ok(_))
        )
    }

    fn finish(&self, state: OperationState, result: Option<Result<OperationOutput, Error>>) {
        {
            let mut s = self.status();
            if s.state != OperationState::Running {
                return;
            }
            s.state = state;
            s.result = result;
            s.finished_at = Some(SystemTime::now());
        }
        self.done.send_replace(true);
    }
}

/// The code a successful output carries (a change's success-with-information code).
fn output_code(out: &OperationOutput) -> Hresult {
    match out {
        OperationOutput::Mutation(m) => u32::from_str_radix(m.hresult.trim_start_matches("0x"), 16)
            .map(Hresult::from_code)
            .unwrap_or(Hresult::S_OK),
        _ => Hresult::S_OK,
    }
}

#[derive(Default)]
struct Registry {
    ops: HashMap<Uuid, Arc<Operation>>,
    order: VecDeque<Uuid>,
}

/// The operations of the daemon.
#[derive(Default, Clone)]
pub struct Operations {
    registry: Arc<Mutex<Registry>>,
}

impl Operations {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts `work` as operation `operation` (`cancelable`: Cancel may abort it while it runs).
    pub fn start<F>(
        &self,
        operation: &str,
        cancelable: bool,
        work: F,
    ) -> Result<Arc<Operation>, Error>
    where
        F: Future<Output = Result<OperationOutput, Error>> + Send + 'static,
    {
        let (done, _) = watch::channel(false);
        let op = Arc::new(Operation {
            id: Uuid::new_v4(),
            operation: operation.to_string(),
            started_at: SystemTime::now(),
            cancelable,
            status: Mutex::new(Status {
                state: OperationState::Running,
                finished_at: None,
                result: None,
            }),
            done,
            abort: Mutex::new(None),
        });
        {
            let mut reg = self.registry();
            if reg.ops.values().filter(|o| !o.is_done()).count() >= MAX_RUNNING {
                return Err(
                    Error::new(Hresult::from_win32(crate::error::ERROR_BUSY)).because(format!(
                        "{MAX_RUNNING} operations are running; try again later"
                    )),
                );
            }
            while reg.order.len() >= MAX_KEPT {
                let Some(pos) = reg
                    .order
                    .iter()
                    .position(|id| reg.ops.get(id).is_none_or(|o| o.is_done()))
                else {
                    break;
                };
                if let Some(id) = reg.order.remove(pos) {
                    reg.ops.remove(&id);
                }
            }
            reg.ops.insert(op.id, op.clone());
            reg.order.push_back(op.id);
        }
        let task_op = op.clone();
        let handle = tokio::spawn(async move {
            let result = work.await;
            let state = if result.is_ok() {
                OperationState::Succeeded
            } else {
                OperationState::Failed
            };
            task_op.finish(state, Some(result));
        });
        *op.abort.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle.abort_handle());
        Ok(op)
    }

    /// The operation `id`.
    pub fn get(&self, id: Uuid) -> Option<Arc<Operation>> {
        self.registry().ops.get(&id).cloned()
    }

    /// Every kept operation, oldest first.
    pub fn list(&self) -> Vec<Arc<Operation>> {
        let reg = self.registry();
        reg.order
            .iter()
            .filter_map(|id| reg.ops.get(id).cloned())
            .collect()
    }

    /// `Cancel`: `VDS_E_CANCEL_TOO_LATE` when it finished or is a change already under way.
    pub fn cancel(&self, op: &Operation) -> Result<(), Error> {
        if op.is_done() || !op.cancelable {
            return Err(
                Error::new(Hresult::VDS_E_CANCEL_TOO_LATE).because(if op.is_done() {
                    "the operation has finished"
                } else {
                    "a change may already have reached the array"
                }),
            );
        }
        if let Some(h) = op.abort.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            h.abort();
        }
        op.finish(OperationState::Canceled, None);
        Ok(())
    }

    /// How many are running.
    pub fn running(&self) -> usize {
        self.registry()
            .ops
            .values()
            .filter(|o| !o.is_done())
            .count()
    }

    /// Waits until none runs, at most `deadline`; true when none does.
    pub async fn drain(&self, deadline: Duration) -> bool {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let running: Vec<Arc<Operation>> =
                self.list().into_iter().filter(|o| !o.is_done()).collect();
            if running.is_empty() {
                return true;
            }
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            running[0].wait(left).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn query_wait_cancel() {
        let ops = Operations::default();
        let quick = ops
            .start("quick", false, async {
                Err(Error::new(Hresult::VDS_E_OBJECT_NOT_FOUND))
            })
            .unwrap();
        assert!(quick.wait(Duration::from_secs(5)).await);
        let d = quick.doc();
        assert_eq!(d.state, OperationState::Failed);
        assert_eq!(d.hresult, "0x80042405");
        assert!(ops.cancel(&quick).is_err());
        let slow = ops
            .start("slow", true, async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(Error::new(Hresult::E_FAIL))
            })
            .unwrap();
        assert!(!slow.wait(Duration::from_millis(20)).await);
        assert_eq!(slow.doc().hresult, "0x80042409");
        ops.cancel(&slow).unwrap();
        assert_eq!(slow.doc().state, OperationState::Canceled);
        assert_eq!(slow.doc().name, "VDS_E_OPERATION_CANCELED");
        assert!(ops.drain(Duration::from_secs(1)).await);
    }
}
