//! Canonical encoding (DESIGN §2): borsh for everything that is hashed or signed.
//!
//! borsh is deterministic and length-prefixed, so one value has exactly one encoding.
//! [`decode`] is strict: it refuses trailing bytes (two encodings of one value would let a
//! peer change a hash without changing the meaning) and input above a caller-given limit.

use borsh::{BorshDeserialize, BorshSerialize};

/// The largest message any decoder in the protocol core accepts.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input is larger than the limit for this kind of message.
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    /// The bytes are not a valid encoding (truncated, bad tag, bad length, trailing bytes...).
    #[error("malformed encoding: {0}")]
    Malformed(String),
}

/// The canonical bytes of `value`.
pub fn encode<T: BorshSerialize + ?Sized>(value: &T) -> Vec<u8> {
    // Writing into a Vec cannot fail; borsh's io::Error only comes from the writer.
    borsh::to_vec(value).expect("borsh encoding into a Vec never fails")
}

/// Decodes exactly one `T` from `bytes`, which must be at most [`MAX_MESSAGE_BYTES`].
pub fn decode<T: BorshDeserialize>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_limited(bytes, MAX_MESSAGE_BYTES)
}

/// Decodes exactly one `T` from `bytes`, which must be at most `limit` bytes.
pub fn decode_limited<T: BorshDeserialize>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    // `from_slice` already fails on unread trailing bytes.
    borsh::from_slice(bytes).map_err(|e| CodecError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&(7u64, String::from("x")));
        assert_eq!(decode::<(u64, String)>(&bytes).unwrap(), (7, "x".into()));
        bytes.push(0);
        assert!(matches!(
            decode::<(u64, String)>(&bytes),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn oversize_is_refused_before_parsing() {
        let bytes = vec![0u8; 100];
        assert_eq!(
            decode_limited::<Vec<u8>>(&bytes, 10),
            Err(CodecError::TooLarge { size: 100, limit: 10 })
        );
    }

    #[test]
    fn huge_length_prefix_does_not_allocate_or_panic() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        assert!(decode::<Vec<u64>>(&bytes).is_err());
        assert!(decode::<String>(&bytes).is_err());
    }
}
