//! Support shared by the integration tests: a provider kind's state kept in memory, in place of
//! the store the service gives it.

use std::sync::Mutex;

use vds_model::Error;
use vds_providers::KindState;

/// A [`KindState`] in memory: empty until written, its lock a no-op (one process, one test).
#[derive(Debug, Default)]
pub struct MemoryState(Mutex<Option<Vec<u8>>>);

impl KindState for MemoryState {
    fn read(&self) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    fn write(&self, bytes: &[u8]) -> Result<(), Error> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes.to_vec());
        Ok(())
    }

    fn lock(&self) -> Result<Box<dyn Send>, Error> {
        Ok(Box::new(()))
    }
}

impl MemoryState {
    /// What was last written.
    #[allow(dead_code)] // not every test file reads it
    pub fn read_now(&self) -> Option<Vec<u8>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
