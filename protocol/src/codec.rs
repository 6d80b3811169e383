//! Framing of the relay's request-response protocols: each message is its borsh encoding
//! behind a 4-byte big-endian length prefix. The prefix is checked against the protocol's
//! `REQUEST_SIZE_LIMIT` / `RESPONSE_SIZE_LIMIT` before anything is allocated, and
//! [`Message::from_bytes`] checks it again while decoding (refusing trailing bytes).
//!
//! A request that fits its limit but does not decode is handed to the relay as
//! [`MalformedRequest`], so it can answer with a typed refusal ([`Protocol::malformed`]) and
//! count it against the peer. An oversized frame is refused as an `InvalidData` I/O error
//! without reading its body: the stream is reset and the peer gets a strike.

use crate::blobs::{self, BlobRefusal, BlobRequest, BlobResponse, RefusalKind};
use crate::headers::{self, HeadersRequest, HeadersResponse};
use crate::proofs::{self, ProofRequest, ProofResponse};
use crate::txs::{self, SubmitTx, SubmitTxResponse};
use crate::{truncate_reason, Message, ServiceError};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::request_response;
use libp2p::StreamProtocol;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::time::Duration;

/// Bytes of the length prefix in front of every message.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// One request-response protocol of [`crate::protocol`]: its name, messages and time limit.
pub trait Protocol: Sized + Send + Sync + 'static {
    const NAME: &'static str;
    const TIME_LIMIT: Duration;
    type Request: Message + Send + 'static;
    type Response: Message + Send + 'static;

    /// The answer to a request that fit its size limit but did not decode.
    fn malformed(error: &MalformedRequest) -> Self::Response;

    /// `true` when the answer says the requester sent something it should not have.
    fn is_peer_fault(response: &Self::Response) -> bool;

    fn stream_protocol() -> StreamProtocol {
        StreamProtocol::new(Self::NAME)
    }
}

/// `/medledger/headers/1`.
#[derive(Debug, Clone, Copy)]
pub enum Headers {}
/// `/medledger/proofs/1`.
#[derive(Debug, Clone, Copy)]
pub enum Proofs {}
/// `/medledger/txs/1`.
#[derive(Debug, Clone, Copy)]
pub enum Txs {}
/// `/medledger/blobs/1`.
#[derive(Debug, Clone, Copy)]
pub enum Blobs {}

impl Protocol for Headers {
    const NAME: &'static str = headers::PROTOCOL;
    const TIME_LIMIT: Duration = headers::RESPONSE_TIME_LIMIT;
    type Request = HeadersRequest;
    type Response = HeadersResponse;

    fn malformed(error: &MalformedRequest) -> HeadersResponse {
        HeadersResponse::Failed(error.clone().into())
    }

    fn is_peer_fault(response: &HeadersResponse) -> bool {
        matches!(response, HeadersResponse::Failed(e) if e.is_peer_fault())
    }
}

impl Protocol for Proofs {
    const NAME: &'static str = proofs::PROTOCOL;
    const TIME_LIMIT: Duration = proofs::RESPONSE_TIME_LIMIT;
    type Request = ProofRequest;
    type Response = ProofResponse;

    fn malformed(error: &MalformedRequest) -> ProofResponse {
        ProofResponse::Failed(error.clone().into())
    }

    fn is_peer_fault(response: &ProofResponse) -> bool {
        matches!(response, ProofResponse::Failed(e) if e.is_peer_fault())
    }
}

impl Protocol for Txs {
    const NAME: &'static str = txs::PROTOCOL;
    const TIME_LIMIT: Duration = txs::RESPONSE_TIME_LIMIT;
    type Request = SubmitTx;
    type Response = SubmitTxResponse;

    fn malformed(error: &MalformedRequest) -> SubmitTxResponse {
        SubmitTxResponse::Rejected {
            reason: truncate_reason(error.to_string()),
        }
    }

    /// A mempool rejection (bad nonce, low balance) is an honest "no", not a fault.
    fn is_peer_fault(_: &SubmitTxResponse) -> bool {
        false
    }
}

impl Protocol for Blobs {
    const NAME: &'static str = blobs::PROTOCOL;
    const TIME_LIMIT: Duration = blobs::RESPONSE_TIME_LIMIT;
    type Request = BlobRequest;
    type Response = BlobResponse;

    fn malformed(error: &MalformedRequest) -> BlobResponse {
        BlobResponse::Refused(BlobRefusal {
            kind: RefusalKind::Malformed,
            reason: truncate_reason(error.to_string()),
        })
    }

    fn is_peer_fault(response: &BlobResponse) -> bool {
        matches!(response, BlobResponse::Refused(r) if r.kind.is_peer_fault())
    }
}

/// A request frame within its size limit whose bytes did not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed request: {0}")]
pub struct MalformedRequest(pub String);

impl From<MalformedRequest> for ServiceError {
    fn from(error: MalformedRequest) -> Self {
        ServiceError::Malformed {
            reason: truncate_reason(error.0),
        }
    }
}

/// A request as the relay reads it: decoded, or why it did not decode.
pub type Inbound<R> = Result<R, MalformedRequest>;

/// A length prefix larger than the message's limit: refused before reading the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("frame of {len} bytes exceeds the limit of {limit}")]
pub struct FrameTooLarge {
    pub len: u64,
    pub limit: usize,
}

/// Reads one length-prefixed frame of at most `limit` bytes.
pub async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, limit: usize) -> io::Result<Vec<u8>> {
    let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
    io.read_exact(&mut prefix).await?;
    let len = u32::from_be_bytes(prefix);
    if len as usize > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            FrameTooLarge {
                len: len.into(),
                limit,
            },
        ));
    }
    let mut frame = vec![0u8; len as usize];
    io.read_exact(&mut frame).await?;
    Ok(frame)
}

/// Writes `bytes` as one length-prefixed frame, refusing more than `limit` bytes.
pub async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
    limit: usize,
) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|&len| len as usize <= limit);
    let Some(len) = len else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            FrameTooLarge {
                len: bytes.len() as u64,
                limit,
            },
        ));
    };
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.flush().await
}

/// `true` if an I/O error from this codec means the peer sent bytes it must not send.
pub fn is_protocol_violation(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::InvalidData
}

/// The request-response codec of protocol `P` (used by the relay and by native clients).
pub struct Codec<P>(PhantomData<fn() -> P>);

impl<P> fmt::Debug for Codec<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Codec")
    }
}

impl<P> Clone for Codec<P> {
    fn clone(&self) -> Self {
        Codec(PhantomData)
    }
}

impl<P> Default for Codec<P> {
    fn default() -> Self {
        Codec(PhantomData)
    }
}

impl<P: Protocol> request_response::Codec for Codec<P> {
    type Protocol = StreamProtocol;
    type Request = Inbound<P::Request>;
    type Response = P::Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Self::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        let frame = read_frame(io, <P::Request as Message>::SIZE_LIMIT).await?;
        Ok(P::Request::from_bytes(&frame).map_err(|e| MalformedRequest(truncate_reason(e.to_string()))))
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Self::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let frame = read_frame(io, <P::Response as Message>::SIZE_LIMIT).await?;
        P::Response::from_bytes(&frame).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Self::Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let request = request.map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        write_frame(io, &request.to_bytes(), <P::Request as Message>::SIZE_LIMIT).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Self::Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response.to_bytes(), <P::Response as Message>::SIZE_LIMIT).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use request_response::Codec as _;

    #[tokio::test]
    async fn requests_round_trip_and_garbage_is_malformed() {
        let mut codec = Codec::<Headers>::default();
        let proto = Headers::stream_protocol();
        let mut out = Cursor::new(Vec::new());
        codec
            .write_request(&proto, &mut out, Ok(HeadersRequest::At { height: 7 }))
            .await
            .unwrap();
        let bytes = out.into_inner();
        assert_eq!(
            bytes.len(),
            LENGTH_PREFIX_BYTES + HeadersRequest::At { height: 7 }.to_bytes().len()
        );
        let read = codec.read_request(&proto, &mut Cursor::new(bytes)).await.unwrap();
        assert_eq!(read, Ok(HeadersRequest::At { height: 7 }));

        let mut garbage = 3u32.to_be_bytes().to_vec();
        garbage.extend([9, 9, 9]);
        let read = codec
            .read_request(&proto, &mut Cursor::new(garbage))
            .await
            .unwrap();
        assert!(read.is_err());
        assert!(Headers::is_peer_fault(&Headers::malformed(&read.unwrap_err())));
    }

    #[tokio::test]
    async fn an_oversized_prefix_is_refused_before_reading() {
        let mut codec = Codec::<Headers>::default();
        let proto = Headers::stream_protocol();
        // The prefix claims 4 GiB; no body follows, so reading it would fail differently.
        let frame = u32::MAX.to_be_bytes().to_vec();
        let error = codec
            .read_request(&proto, &mut Cursor::new(frame))
            .await
            .unwrap_err();
        assert!(is_protocol_violation(&error));
        let too_large = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<FrameTooLarge>())
            .unwrap();
        assert_eq!(too_large.limit, headers::REQUEST_SIZE_LIMIT);
        assert_eq!(too_large.len, u64::from(u32::MAX));
    }

    #[tokio::test]
    async fn writing_refuses_what_the_peer_would_refuse() {
        let mut out = Cursor::new(Vec::new());
        let error = write_frame(&mut out, &[0; 65], 64).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(out.into_inner().is_empty());
    }
}
