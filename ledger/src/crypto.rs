//! Hashing and signatures (DESIGN §2).
//!
//! Keys are made and used for signing with `ed25519-dalek`; every verification goes through
//! `ed25519-consensus` (ZIP-215), so single and batch verification accept exactly the same
//! signatures and no two parts of the system can disagree on a signature's validity.
//! Randomness never enters this crate: keys come from seeds the caller draws, and batch
//! verification derives its coefficients from the batch itself (see [`SignatureBatch`]).

use borsh::{BorshDeserialize, BorshSerialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    pub const ZERO: Hash = Hash([0; 32]);

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(Hash(out))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..16])
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// SHA-256 of one byte string.
pub fn sha256(data: &[u8]) -> Hash {
    Hash(Sha256::digest(data).into())
}

/// SHA-256 of several byte strings concatenated, without building the concatenation.
pub fn sha256_concat(parts: &[&[u8]]) -> Hash {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    Hash(hasher.finalize().into())
}

/// An Ed25519 public key. It is also the address of an account, a device and a validator.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct PublicKey(pub [u8; 32]);

/// Accounts, devices and validators are all named by their public key.
pub type Address = PublicKey;

impl PublicKey {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(PublicKey(out))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pk:{}", &self.to_hex()[..12])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// An Ed25519 signature (R ‖ s).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sig:{}", hex::encode(&self.0[..8]))
    }
}

/// An X25519 public key, used to wrap data keys for a reader (DESIGN §4).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct EncryptionKey(pub [u8; 32]);

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "x25519:{}", hex::encode(&self.0[..6]))
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The public key bytes are not a valid curve point encoding.
    #[error("malformed public key {0:?}")]
    MalformedKey(PublicKey),
    /// The signature does not verify under the key for the message.
    #[error("invalid signature by {0:?}")]
    Invalid(PublicKey),
    /// At least one signature of a batch is invalid (the batch does not say which).
    #[error("batch of {0} signatures did not verify")]
    BatchInvalid(usize),
}

/// An Ed25519 signing key. Never serialised by this crate except through [`SigningKey::to_seed`].
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({:?})", self.public_key())
    }
}

impl SigningKey {
    /// The key whose secret seed is `seed` (32 bytes the caller drew from a CSPRNG).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    pub fn to_seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        use ed25519_dalek::Signer;
        Signature(self.0.sign(message).to_bytes())
    }
}

/// The two keys of an account: Ed25519 for signing txs, X25519 for receiving wrapped data keys.
#[derive(Clone)]
pub struct AccountKeys {
    pub signing: SigningKey,
    encryption: x25519_dalek::StaticSecret,
}

impl fmt::Debug for AccountKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKeys")
            .field("address", &self.address())
            .field("encryption", &self.encryption_key())
            .finish()
    }
}

impl AccountKeys {
    pub fn from_seeds(signing_seed: [u8; 32], encryption_seed: [u8; 32]) -> Self {
        AccountKeys {
            signing: SigningKey::from_seed(signing_seed),
            encryption: x25519_dalek::StaticSecret::from(encryption_seed),
        }
    }

    /// Both keys derived from one 32-byte master seed (domain-separated), for backups that
    /// are a single secret.
    pub fn from_master_seed(master: [u8; 32]) -> Self {
        let signing = sha256_concat(&[b"medledger/key/ed25519", &master]).0;
        let encryption = sha256_concat(&[b"medledger/key/x25519", &master]).0;
        Self::from_seeds(signing, encryption)
    }

    pub fn address(&self) -> Address {
        self.signing.public_key()
    }

    pub fn encryption_key(&self) -> EncryptionKey {
        EncryptionKey(x25519_dalek::PublicKey::from(&self.encryption).to_bytes())
    }

    pub fn encryption_secret(&self) -> &x25519_dalek::StaticSecret {
        &self.encryption
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        self.signing.sign(message)
    }
}

/// Verifies one signature under ZIP-215 rules.
///
/// Valid signatures are first checked on the fast path ([`dalek_accepts`]); anything it does
/// not accept is judged by `ed25519-consensus`, whose verdict (and error) is final. The fast
/// path only ever accepts signatures ZIP-215 accepts, so the accepted set is unchanged.
pub fn verify_signature(
    key: &PublicKey,
    message: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    if dalek_accepts(key, message, signature) {
        return Ok(());
    }
    let vk = ed25519_consensus::VerificationKey::try_from(key.0)
        .map_err(|_| SignatureError::MalformedKey(*key))?;
    vk.verify(&ed25519_consensus::Signature::from(signature.0), message)
        .map_err(|_| SignatureError::Invalid(*key))
}

/// The group order ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// `s < ℓ` for a little-endian scalar: ZIP-215 (and RFC 8032) reject any other `s`.
fn is_canonical_scalar(s: &[u8; 32]) -> bool {
    s.iter().rev().cmp(GROUP_ORDER.iter().rev()) == std::cmp::Ordering::Less
}

/// Fast path for valid signatures: `ed25519-dalek`'s cofactorless check on `curve25519-dalek`
/// 4, which picks its AVX2 backend at run time (on x86-64 with AVX2 about 20% less time than
/// `ed25519-consensus`, whose `curve25519-dalek-ng` is serial-only), with cached keys.
///
/// Why it accepts nothing ZIP-215 refuses: it requires `s < ℓ` (checked here too, so a
/// `legacy_compatibility` feature unified in from elsewhere cannot loosen it), decompresses `A`
/// with the same rule as ZIP-215 (non-canonical encodings included), hashes the same bytes for
/// `k = H(R ‖ A ‖ M)`, and accepts only if `[s]B − [k]A` compresses to exactly the bytes of
/// `R`; then `R` decodes to that point and `[8]([s]B − R − [k]A) = 0`, ZIP-215's equation.
/// It refuses some ZIP-215-valid signatures (small-order components, non-canonical `R`); those
/// fall through to `ed25519-consensus`. Invalid signatures pay both checks.
fn dalek_accepts(key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
    use ed25519_dalek::Verifier;
    let mut s = [0u8; 32];
    s.copy_from_slice(&signature.0[32..]);
    if !is_canonical_scalar(&s) {
        return false;
    }
    let Some(vk) = decompressed_key(key) else {
        return false;
    };
    vk.verify(message, &ed25519_dalek::Signature::from_bytes(&signature.0))
        .is_ok()
}

/// Most decompressed keys [`decompressed_key`] keeps (~230 bytes each, ~7.5 MiB when full):
/// every signer of a busy chain's last few seconds. With 1,024 per thread, a 10,000-account
/// load missed on nearly every tx and decompression was ~3 % of a validator's CPU.
const MAX_CACHED_KEYS: usize = 32 * 1024;

/// Public keys decompressed for `ed25519-dalek`, shared by all threads (each tx is verified
/// once per node, on whichever thread admits it, so per-thread caches would each need every
/// signer). Decompressing is a field exponentiation (~3 µs, a tenth of a verification) and
/// validators, devices and patients keep signing with the same keys. The value is a pure
/// function of the key bytes, so the cache cannot change a verdict; when full it is emptied,
/// so a flood of fresh keys costs only the decompressions it would cost anyway.
struct DecompressedKeys {
    capacity: usize,
    keys: std::sync::Mutex<std::collections::HashMap<[u8; 32], ed25519_dalek::VerifyingKey>>,
}

impl DecompressedKeys {
    fn new(capacity: usize) -> Self {
        DecompressedKeys {
            capacity,
            keys: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The map, even if another thread panicked holding it: it only ever holds pure values,
    /// each inserted whole.
    fn keys(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<[u8; 32], ed25519_dalek::VerifyingKey>> {
        self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, key: &PublicKey) -> Option<ed25519_dalek::VerifyingKey> {
        let cached = self.keys().get(&key.0).copied();
        if cached.is_some() {
            return cached;
        }
        // Decompressed outside the lock: it is most of the cost.
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&key.0).ok()?;
        let mut keys = self.keys();
        if keys.len() >= self.capacity {
            keys.clear();
        }
        keys.insert(key.0, vk);
        Some(vk)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys().len()
    }
}

/// `key` decompressed for `ed25519-dalek`, from [`DecompressedKeys`].
fn decompressed_key(key: &PublicKey) -> Option<ed25519_dalek::VerifyingKey> {
    static KEYS: std::sync::LazyLock<DecompressedKeys> =
        std::sync::LazyLock::new(|| DecompressedKeys::new(MAX_CACHED_KEYS));
    KEYS.get(key)
}

/// Verifies many signatures at once; accepts exactly the set [`verify_signature`] accepts.
///
/// Fast path: `ed25519-dalek`'s batch equation on `curve25519-dalek` 4 (AVX2 when the CPU has
/// it), with cached keys. It is cofactorless, but with independent 128-bit coefficients `z_i`
/// it holds only if the prime-order part of every `[s_i]B − R_i − [k_i]A_i` is zero (except
/// with probability about 2^-128), i.e. only if every signature meets ZIP-215's cofactored
/// equation; `s < ℓ` is checked here and both libraries decode `A`, `R` and hash `R ‖ A ‖ M`
/// alike. Its coefficients come from a merlin transcript of all inputs: deterministic too.
/// When it refuses (an invalid signature, or a valid one with a small-order component), the
/// `ed25519-consensus` batch below decides, exactly as before. Batches in which most signers
/// repeat (a block's txs) go straight to `ed25519-consensus`: it folds all signatures of one
/// signer onto a single key point, which makes it the faster one there.
///
/// The fallback's random coefficients are derived by hashing every queued item: a forger would
/// have to fix all signatures before learning the coefficients, which is what randomness
/// buys, and the crate stays free of an entropy source (it must run identically in wasm).
#[derive(Default)]
pub struct SignatureBatch {
    items: Vec<(PublicKey, Signature, Vec<u8>)>,
}

impl fmt::Debug for SignatureBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureBatch({} queued)", self.items.len())
    }
}

impl SignatureBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn queue(&mut self, key: &PublicKey, message: &[u8], signature: &Signature) {
        self.items.push((*key, *signature, message.to_vec()));
    }

    pub fn verify(self) -> Result<(), SignatureError> {
        let len = self.items.len();
        if len == 0 || self.dalek_accepts() {
            return Ok(());
        }
        let mut transcript = Sha256::new();
        let mut verifier = ed25519_consensus::batch::Verifier::new();
        for (key, signature, message) in &self.items {
            transcript.update(key.0);
            transcript.update(signature.0);
            transcript.update((message.len() as u64).to_le_bytes());
            transcript.update(message);
            verifier.queue((
                ed25519_consensus::VerificationKeyBytes::from(key.0),
                ed25519_consensus::Signature::from(signature.0),
                &message[..],
            ));
        }
        let seed: [u8; 32] = transcript.finalize().into();
        verifier
            .verify(TranscriptRng::new(seed))
            .map_err(|_| SignatureError::BatchInvalid(len))
    }

    fn dalek_accepts(&self) -> bool {
        let n = self.items.len();
        let distinct: std::collections::BTreeSet<&[u8; 32]> =
            self.items.iter().map(|(k, _, _)| &k.0).collect();
        if distinct.len() * 2 < n {
            return false;
        }
        let mut keys = Vec::with_capacity(n);
        let mut signatures = Vec::with_capacity(n);
        let mut messages = Vec::with_capacity(n);
        for (key, signature, message) in &self.items {
            let mut s = [0u8; 32];
            s.copy_from_slice(&signature.0[32..]);
            if !is_canonical_scalar(&s) {
                return false;
            }
            let Some(vk) = decompressed_key(key) else {
                return false;
            };
            keys.push(vk);
            signatures.push(ed25519_dalek::Signature::from_bytes(&signature.0));
            messages.push(&message[..]);
        }
        ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
    }
}

/// SHA-256 in counter mode over a seed; only ever used for batch coefficients.
struct TranscriptRng {
    seed: [u8; 32],
    counter: u64,
    buffer: [u8; 32],
    used: usize,
}

impl TranscriptRng {
    fn new(seed: [u8; 32]) -> Self {
        TranscriptRng {
            seed,
            counter: 0,
            buffer: [0; 32],
            used: 32,
        }
    }
}

impl rand_core::RngCore for TranscriptRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for byte in dest.iter_mut() {
            if self.used == 32 {
                self.buffer = sha256_concat(&[&self.seed, &self.counter.to_le_bytes()]).0;
                self.counter += 1;
                self.used = 0;
            }
            *byte = self.buffer[self.used];
            self.used += 1;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for TranscriptRng {}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// RFC 8032 §7.1, TEST 1–3 and TEST SHA(abc).
    const RFC8032: &[(&str, &str, &str, &str)] = &[
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
        (
            "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
            "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
        ),
    ];

    #[test]
    fn rfc8032_vectors_sign_and_verify() {
        for (sk, pk, msg, sig) in RFC8032 {
            let key = SigningKey::from_seed(unhex(sk));
            assert_eq!(key.public_key().0, unhex::<32>(pk));
            let msg = hex::decode(msg).unwrap();
            let signature = key.sign(&msg);
            assert_eq!(signature.0, unhex::<64>(sig));
            verify_signature(&key.public_key(), &msg, &signature).unwrap();
            let mut batch = SignatureBatch::new();
            batch.queue(&key.public_key(), &msg, &signature);
            batch.verify().unwrap();
        }
    }

    #[test]
    fn tampered_signature_is_refused_single_and_batch() {
        let (sk, pk, msg, sig) = RFC8032[1];
        let pk = PublicKey(unhex(pk));
        let msg = hex::decode(msg).unwrap();
        let _ = sk;
        for bit in [0usize, 7, 255, 300, 511] {
            let mut bad = Signature(unhex(sig));
            bad.0[bit / 8] ^= 1 << (bit % 8);
            assert!(verify_signature(&pk, &msg, &bad).is_err(), "bit {bit}");
            let mut batch = SignatureBatch::new();
            batch.queue(&pk, &msg, &Signature(unhex(sig)));
            batch.queue(&pk, &msg, &bad);
            assert_eq!(batch.verify(), Err(SignatureError::BatchInvalid(2)));
        }
    }

    /// ZIP-215 edge cases: the fast path must never change a verdict of `ed25519-consensus`.
    #[test]
    fn fast_path_agrees_with_zip215_on_edge_cases() {
        fn consensus(key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
            ed25519_consensus::VerificationKey::try_from(*key)
                .and_then(|vk| vk.verify(&ed25519_consensus::Signature::from(*sig), msg))
                .is_ok()
        }
        // Encodings of small-order points, canonical and not (y ≥ p, or x = 0 with the sign bit).
        let mut points: Vec<[u8; 32]> = vec![
            unhex("0100000000000000000000000000000000000000000000000000000000000000"),
            unhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
            unhex("0000000000000000000000000000000000000000000000000000000000000080"),
            unhex("0000000000000000000000000000000000000000000000000000000000000000"),
            unhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
            unhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
            unhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
            unhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
            unhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
            unhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
            unhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"),
            unhex("0100000000000000000000000000000000000000000000000000000000000080"),
        ];
        let signer = SigningKey::from_seed([3; 32]);
        points.push(signer.public_key().0);
        let msg = b"zip215";
        let mut cases = 0;
        let mut fallbacks = 0;
        for a in &points {
            for r in &points {
                for s in [[0u8; 32], GROUP_ORDER] {
                    let mut sig = [0u8; 64];
                    sig[..32].copy_from_slice(r);
                    sig[32..].copy_from_slice(&s);
                    let expected = consensus(a, msg, &sig);
                    let got = verify_signature(&PublicKey(*a), msg, &Signature(sig)).is_ok();
                    assert_eq!(
                        got,
                        expected,
                        "A={} R={} s={}",
                        hex::encode(a),
                        hex::encode(r),
                        hex::encode(s)
                    );
                    assert!(!dalek_accepts(&PublicKey(*a), msg, &Signature(sig)) || expected);
                    fallbacks +=
                        usize::from(expected && !dalek_accepts(&PublicKey(*a), msg, &Signature(sig)));
                    cases += 1;
                }
            }
        }
        assert!(
            cases > 300 && fallbacks > 0,
            "{cases} cases, {fallbacks} via ed25519-consensus"
        );

        // s + ℓ: the same point, a non-canonical scalar; refused by both.
        let sig = signer.sign(msg);
        let mut bad = sig.0;
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(bad[32 + i]) + u16::from(GROUP_ORDER[i]) + carry;
            bad[32 + i] = v as u8;
            carry = v >> 8;
        }
        assert!(consensus(&signer.public_key().0, msg, &sig.0));
        assert!(!consensus(&signer.public_key().0, msg, &bad));
        assert!(!dalek_accepts(&signer.public_key(), msg, &Signature(bad)));
        assert!(verify_signature(&signer.public_key(), msg, &Signature(bad)).is_err());
        assert!(is_canonical_scalar(&[0; 32]) && !is_canonical_scalar(&GROUP_ORDER));
        let mut below = GROUP_ORDER;
        below[0] -= 1;
        assert!(is_canonical_scalar(&below));
    }

    /// The `i`-th of a family of distinct test keys.
    fn numbered_key(i: u64) -> SigningKey {
        let mut seed = [9u8; 32];
        seed[..8].copy_from_slice(&i.to_le_bytes());
        SigningKey::from_seed(seed)
    }

    #[test]
    fn key_cache_overflow_keeps_keys_exact() {
        let cache = DecompressedKeys::new(16);
        let keys: Vec<PublicKey> = (0..40).map(|i| numbered_key(i).public_key()).collect();
        for round in 0..2 {
            for (i, key) in keys.iter().enumerate() {
                let fresh = ed25519_dalek::VerifyingKey::from_bytes(&key.0).unwrap();
                assert_eq!(cache.get(key), Some(fresh), "round {round}, key {i}");
                assert!(cache.len() <= 16);
            }
        }
        // An encoding that is not a point is refused and not cached.
        let not_a_point = (0u8..=255)
            .map(|b| PublicKey([b; 32]))
            .find(|k| ed25519_dalek::VerifyingKey::from_bytes(&k.0).is_err())
            .unwrap();
        let before = cache.len();
        assert_eq!(cache.get(&not_a_point), None);
        assert_eq!(cache.len(), before);
    }

    #[test]
    fn cached_keys_keep_verdicts() {
        let msg = b"cache";
        let signed: Vec<(PublicKey, Signature)> = (0..40u64)
            .map(|i| {
                let key = numbered_key(i);
                (key.public_key(), key.sign(msg))
            })
            .collect();
        for _ in 0..2 {
            for (i, (key, sig)) in signed.iter().enumerate() {
                assert_eq!(verify_signature(key, msg, sig), Ok(()));
                let (other, _) = &signed[(i + 1) % signed.len()];
                assert_eq!(
                    verify_signature(other, msg, sig),
                    Err(SignatureError::Invalid(*other))
                );
            }
        }
    }

    #[test]
    fn wrong_message_is_refused() {
        let key = SigningKey::from_seed([7; 32]);
        let signature = key.sign(b"consent");
        assert_eq!(
            verify_signature(&key.public_key(), b"consenT", &signature),
            Err(SignatureError::Invalid(key.public_key()))
        );
    }

    #[test]
    fn account_keys_are_deterministic_and_distinct() {
        let a = AccountKeys::from_master_seed([1; 32]);
        let b = AccountKeys::from_master_seed([1; 32]);
        let c = AccountKeys::from_master_seed([2; 32]);
        assert_eq!(a.address(), b.address());
        assert_eq!(a.encryption_key(), b.encryption_key());
        assert_ne!(a.address(), c.address());
        assert_ne!(a.address().0, a.encryption_key().0);
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            sha256(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_concat(&[b"a", b"bc"]), sha256(b"abc"));
    }
}
