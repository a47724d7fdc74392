//! Reading one PDU from a socket with a deadline and a size cap, shared by the client and the
//! SCN listener.

use std::io;

use isns_proto::wire::{HEADER_LEN, pdu_len};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// Why a PDU could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The deadline passed after `received` bytes of the PDU.
    Timeout { received: usize },
    /// EOF after `received` bytes of the PDU (0: a clean close between PDUs).
    Closed { received: usize },
    /// The header announced more than the cap.
    TooLarge { len: usize },
    /// The socket failed.
    Io(io::Error),
}

/// Reads exactly one PDU (header and announced payload) before `deadline`, refusing one longer
/// than `max_len` before reading its payload, so memory stays bounded by `max_len`.
pub(crate) async fn read_pdu<R: AsyncRead + Unpin>(
    r: &mut R,
    deadline: Instant,
    max_len: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut buf = vec![0u8; HEADER_LEN];
    fill(r, &mut buf, 0, deadline).await?;
    let len = pdu_len(&buf).unwrap_or(HEADER_LEN);
    if len > max_len {
        return Err(ReadError::TooLarge { len });
    }
    buf.resize(len, 0);
    fill(r, &mut buf, HEADER_LEN, deadline).await?;
    Ok(buf)
}

async fn fill<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
    mut at: usize,
    deadline: Instant,
) -> Result<(), ReadError> {
    while at < buf.len() {
        match tokio::time::timeout_at(deadline, r.read(&mut buf[at..])).await {
            Err(_) => return Err(ReadError::Timeout { received: at }),
            Ok(Err(e)) => return Err(ReadError::Io(e)),
            Ok(Ok(0)) => return Err(ReadError::Closed { received: at }),
            Ok(Ok(n)) => at += n,
        }
    }
    Ok(())
}
