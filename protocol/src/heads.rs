//! The gossipsub topic on which the relay announces each new finalized header with its commit
//! (DESIGN §5). Published by the libp2p layer from `NodeHandle::subscribe`; defined here so
//! the message and its limit are fixed before the transport exists.

use super::{headers, Message, SignedHeader};

pub const TOPIC: &str = "/medledger/heads/1";
/// One signed header (see [`headers::RESPONSE_SIZE_LIMIT`] for its worst case).
pub const MESSAGE_SIZE_LIMIT: usize = 64 * 1024;

/// A new finalized head.
pub type HeadAnnouncement = SignedHeader;

impl Message for SignedHeader {
    const SIZE_LIMIT: usize = MESSAGE_SIZE_LIMIT;
}

const _: () = assert!(MESSAGE_SIZE_LIMIT <= headers::RESPONSE_SIZE_LIMIT);
