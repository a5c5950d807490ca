//! The client's side of [`crate::transport`]: what it sends on the I/O channel.

use std::borrow::Cow;

use ironrdp_core::{encode_vec, Encode};
use ironrdp_pdu::mcs;
use ironrdp_pdu::x224::X224;
use tokio::io::{AsyncRead, AsyncWrite};

use super::error::{encode_error, ClientError};
pub(super) use crate::transport::{Channels, Framed};

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
