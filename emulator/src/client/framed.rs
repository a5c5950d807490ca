//! The client's side of [`crate::transport`]: the channels it sends on, and what a framing failure
//! means for it.

use std::borrow::Cow;

use ironrdp_core::{encode_vec, Encode};
use ironrdp_pdu::mcs;
use ironrdp_pdu::x224::X224;
use tokio::io::{AsyncRead, AsyncWrite};

use super::error::{encode_error, ClientError};
pub(super) use crate::transport::Framed;
use crate::transport::{FrameError, FrameErrorKind};

/// The MCS channels the client talks on, learned during channel connection.
#[derive(Clone, Copy, Debug)]
pub(super) struct Channels {
    /// The user channel id from Attach User Confirm (the initiator of every request).
    pub user_id: u16,
    /// The I/O channel from the Server Network Data (1003 on every known host).
    pub io_channel: u16,
}

impl From<FrameError> for ClientError {
    fn from(error: FrameError) -> Self {
        let stage = error.stage;
        match error.kind {
            FrameErrorKind::Closed => ClientError::Closed { stage },
            FrameErrorKind::Timeout(timeout) => ClientError::Timeout { stage, timeout },
            FrameErrorKind::Io(error) => ClientError::Io { stage, error },
            FrameErrorKind::Framing(detail) => ClientError::Protocol { stage, detail },
            FrameErrorKind::Encode(detail) => ClientError::Encode { stage, detail },
        }
    }
}

/// Sends `pdu` to the server on the I/O channel (MCS Send Data Request).
pub(super) async fn send_data_request<S, T>(
    framed: &mut Framed<S>,
    stage: &'static str,
    channels: Channels,
    pdu: &T,
) -> Result<(), ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: Encode,
{
    let user_data = encode_vec(pdu).map_err(|e| encode_error(stage, e))?;
    let request = mcs::SendDataRequest {
        initiator_id: channels.user_id,
        channel_id: channels.io_channel,
        user_data: Cow::Owned(user_data),
    };
    Ok(framed.send(stage, &X224(request)).await?)
}
