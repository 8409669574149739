//! An on-disk cache of the encoder's vectors, so that training again on the same corpus reads
//! them back instead of encoding every text again (the encoder reads about 2,000 tokens a
//! second).
//!
//! A cache lives in `root/key/`, where `key` names the encoder and the reading length (a vector
//! depends on both). A text is known by its key: the first 16 bytes of the SHA-256 of its UTF-8
//! bytes. The records are spread over 256 shards, `00.bin` to `ff.bin` after the first byte of
//! the key, so that a corpus of 100,000 texts is 256 files, not 100,000. A shard is a sequence
//! of fixed-size records, with no header:
//!
//! - the text's key (16 bytes);
//! - its vector (`dim` little-endian f32, read back bit for bit);
//! - a check: the first 8 bytes of the SHA-256 of the key and the vector bytes.
//!
//! A damaged record (its check fails, or the shard ends in the middle of it) is detected on
//! reading: its text counts as absent, to be encoded again, and the shard is rewritten
//! atomically with only its sound records, so that the damage is repaired once. Writing appends
//! each shard's new records in one write; two processes writing at once therefore at worst
//! produce records that fail their check (interleaved or cut writes), or lose records appended
//! during a repair, and those texts are simply encoded again. A cache never gives a wrong vector
//! for want of locking, only a miss.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Encoder;
use crate::error::{Error, Result};

/// The key of a text: the first 16 bytes of the SHA-256 of its UTF-8 bytes.
type TextKey = [u8; KEY_LEN];

const KEY_LEN: usize = 16;
const CHECK_LEN: usize = 8;
/// Shards of a cache, one per value of a key's first byte.
const SHARDS: usize = 256;

/// Vectors of texts on disk, for one encoder and one reading length.
#[derive(Debug, Clone)]
pub struct EncodingCache {
    dir: PathBuf,
    dim: usize,
}

/// What [`EncodingCache::get_many`] found.
#[derive(Debug)]
pub struct Lookup {
    /// One per text, in input order: its vector when the cache had a sound one.
    pub vectors: Vec<Option<Vec<f32>>>,
    /// Records found damaged (bad checksum, truncated, wrong length) and dropped; their texts
    /// come back as `None`, to be encoded again.
    pub corrupt: usize,
}

/// A shard as read from disk: its bytes and where its sound records are.
struct Shard {
    bytes: Vec<u8>,
    /// The offset in `bytes` of the first sound record of each key.
    sound: HashMap<TextKey, usize>,
    /// The offsets of those records, in the order of the file (what a repair keeps).
    order: Vec<usize>,
    /// Damaged records, a trailing partial one included.
    corrupt: usize,
}

impl EncodingCache {
    /// The cache of vectors of length `dim` under `root/key/` (created, parents included, if
    /// absent). `key` names the encoder and the reading length, e.g.
    /// `"multilingual-e5-small-0123456789abcdef-t256"`; it must be a plain file name (ASCII
    /// letters, digits, `-`, `_`, `.`; not empty, not `.` or `..`), else [`Error::Config`]
    /// with field `encoding_cache`, so that a cache never reaches outside `root`.
    pub fn open(root: &Path, key: &str, dim: usize) -> Result<EncodingCache> {
        let plain = key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if key.is_empty() || key == "." || key == ".." || !plain {
            return Err(Error::config(
                "encoding_cache",
                format!(
                    "key {key:?} must be a plain file name: ASCII letters, digits, '-', '_' \
                     and '.', not empty, not \".\" or \"..\""
                ),
            ));
        }
        if dim == 0 {
            return Err(Error::Internal("an encoding cache of empty vectors".into()));
        }
        let dir = root.join(key);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(EncodingCache { dir, dim })
    }

    /// The cache of `encoder`'s vectors of texts read up to `max_tokens` pieces, under `root`
    /// (its key names the encoder, a checksum of its identity and the length).
    pub fn for_encoder(root: &Path, encoder: &Encoder, max_tokens: usize) -> Result<EncodingCache> {
        let id = encoder.id();
        let key = format!("{}-{}-t{max_tokens}", id.name, &id.checksum[..16]);
        EncodingCache::open(root, &key, encoder.dim())
    }

    /// The directory of this cache (`root/key`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cached vectors of `texts`, in their order (`None` where absent or damaged). Each
    /// shard needed is read once; a shard found damaged is rewritten with its sound records.
    pub fn get_many<S: AsRef<str>>(&self, texts: &[S]) -> Result<Lookup> {
        let keys: Vec<TextKey> = texts.iter().map(|t| text_key(t.as_ref())).collect();
        let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); SHARDS];
        for (i, key) in keys.iter().enumerate() {
            by_shard[usize::from(key[0])].push(i);
        }
        let mut lookup = Lookup {
            vectors: vec![None; texts.len()],
            corrupt: 0,
        };
        for (shard, wanted) in by_shard.iter().enumerate() {
            if wanted.is_empty() {
                continue;
            }
            let path = self.shard_path(shard);
            let read = self.read_shard(&path)?;
            if read.corrupt > 0 {
                lookup.corrupt += read.corrupt;
                self.rewrite(&path, &read, &[])?;
            }
            for &i in wanted {
                if let Some(&at) = read.sound.get(&keys[i]) {
                    lookup.vectors[i] = Some(self.vector_at(&read.bytes, at));
                }
            }
        }
        Ok(lookup)
    }

    /// Stores the vector of each text, each of length `dim` (else [`Error::Internal`], before
    /// anything is written). Texts already in the cache, or repeated in `entries`, are written
    /// once. New records are appended to their shard in one write; a shard found damaged is
    /// instead rewritten whole, with its sound records and the new ones.
    pub fn put_many<S: AsRef<str>, V: AsRef<[f32]>>(&self, entries: &[(S, V)]) -> Result<()> {
        if let Some((_, v)) = entries.iter().find(|(_, v)| v.as_ref().len() != self.dim) {
            return Err(Error::Internal(format!(
                "a vector of {} numbers for an encoding cache of {}",
                v.as_ref().len(),
                self.dim
            )));
        }
        // The directory may have been cleared since `open`.
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let mut by_shard: Vec<Vec<(TextKey, &[f32])>> = vec![Vec::new(); SHARDS];
        let mut seen = HashSet::new();
        for (text, vector) in entries {
            let key = text_key(text.as_ref());
            if seen.insert(key) {
                by_shard[usize::from(key[0])].push((key, vector.as_ref()));
            }
        }
        for (shard, new) in by_shard.iter().enumerate() {
            if new.is_empty() {
                continue;
            }
            let path = self.shard_path(shard);
            let read = self.read_shard(&path)?;
            let mut bytes = Vec::with_capacity(new.len() * self.record_len());
            for (key, vector) in new {
                if !read.sound.contains_key(key) {
                    push_record(&mut bytes, key, vector);
                }
            }
            if bytes.is_empty() {
                continue;
            }
            if read.corrupt > 0 {
                // Appending after a cut record would misalign every record after it.
                self.rewrite(&path, &read, &bytes)?;
                continue;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(&bytes))
                .map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }

    /// Deletes every cache under `root` (the whole directory); an absent `root` is fine.
    pub fn clear(root: &Path) -> Result<()> {
        match std::fs::remove_dir_all(root) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(root, e)),
            _ => Ok(()),
        }
    }

    fn shard_path(&self, shard: usize) -> PathBuf {
        self.dir.join(format!("{shard:02x}.bin"))
    }

    /// The length of one record: key, vector, check.
    fn record_len(&self) -> usize {
        KEY_LEN + 4 * self.dim + CHECK_LEN
    }

    /// Reads and checks the shard at `path`; a missing shard is empty.
    fn read_shard(&self, path: &Path) -> Result<Shard> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(path, e)),
        };
        let len = self.record_len();
        let mut shard = Shard {
            sound: HashMap::new(),
            order: Vec::new(),
            corrupt: usize::from(bytes.len() % len != 0),
            bytes: Vec::new(),
        };
        for (n, record) in bytes.chunks_exact(len).enumerate() {
            let (body, check) = record.split_at(len - CHECK_LEN);
            if Sha256::digest(body)[..CHECK_LEN] != *check {
                shard.corrupt += 1;
                continue;
            }
            let key: TextKey = body[..KEY_LEN].try_into().expect("16 bytes");
            if let std::collections::hash_map::Entry::Vacant(e) = shard.sound.entry(key) {
                e.insert(n * len);
                shard.order.push(n * len);
            }
        }
        shard.bytes = bytes;
        Ok(shard)
    }

    /// The vector of the record at `at` in `bytes`.
    fn vector_at(&self, bytes: &[u8], at: usize) -> Vec<f32> {
        bytes[at + KEY_LEN..at + KEY_LEN + 4 * self.dim]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    /// Replaces the shard at `path` atomically by the sound records of `shard`, then `extra`
    /// (whole records): a temporary file in the same directory, renamed over it.
    fn rewrite(&self, path: &Path, shard: &Shard, extra: &[u8]) -> Result<()> {
        let len = self.record_len();
        let mut bytes = Vec::with_capacity(shard.order.len() * len + extra.len());
        for &at in &shard.order {
            bytes.extend_from_slice(&shard.bytes[at..at + len]);
        }
        bytes.extend_from_slice(extra);
        let mut tmp = tempfile::Builder::new()
            .prefix(".shard.tmp-")
            .tempfile_in(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?;
        let tmp_path = tmp.path().to_path_buf();
        tmp.write_all(&bytes).map_err(|e| Error::io(&tmp_path, e))?;
        // tempfile creates private files; the shards appended to are not.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::Permissions::from_mode(0o644);
            std::fs::set_permissions(tmp.path(), mode).map_err(|e| Error::io(tmp.path(), e))?;
        }
        tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
        Ok(())
    }
}

/// The key of `text`: the first 16 bytes of the SHA-256 of its UTF-8 bytes.
fn text_key(text: &str) -> TextKey {
    Sha256::digest(text.as_bytes())[..KEY_LEN]
        .try_into()
        .expect("16 bytes")
}

/// Appends the record of `vector` under `key` to `out`: key, vector (f32 LE), check.
fn push_record(out: &mut Vec<u8>, key: &TextKey, vector: &[f32]) {
    let start = out.len();
    out.extend_from_slice(key);
    for x in vector {
        out.extend_from_slice(&x.to_le_bytes());
    }
    let check = Sha256::digest(&out[start..]);
    out.extend_from_slice(&check[..CHECK_LEN]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIM: usize = 4;
    const KEY: &str = "test-encoder-t64";

    /// A distinct vector per `i`, with values whose bits a lossy round trip would change.
    fn vector(i: usize) -> Vec<f32> {
        let x = i as f32;
        let odd = [-0.0, f32::MIN_POSITIVE / 3.0, f32::NAN, f32::MAX][i % 4];
        vec![x + 0.1, odd, -x / 7.0, 1.0 / (x + 3.0)]
    }

    /// The bits of a vector found, to compare exactly (NaN included).
    fn bits(v: &Option<Vec<f32>>) -> Option<Vec<u32>> {
        v.as_ref().map(|v| v.iter().map(|x| x.to_bits()).collect())
    }

    /// The bits of `vector(i)`.
    fn want(i: usize) -> Option<Vec<u32>> {
        bits(&Some(vector(i)))
    }

    /// A new cache in a temporary directory.
    fn new_cache() -> (tempfile::TempDir, EncodingCache) {
        let root = tempfile::tempdir().unwrap();
        let cache = EncodingCache::open(root.path(), KEY, DIM).unwrap();
        (root, cache)
    }

    /// Stores `vector(i)` for the `i`-th text.
    fn store<S: AsRef<str>>(cache: &EncodingCache, texts: &[S]) {
        let vectors = texts.iter().zip(0..).map(|(t, i)| (t.as_ref(), vector(i)));
        cache.put_many(&vectors.collect::<Vec<_>>()).unwrap();
    }

    /// What `get_many` finds: the bits of the vectors, the number of damaged records.
    fn lookup<S: AsRef<str>>(cache: &EncodingCache, texts: &[S]) -> (Vec<Option<Vec<u32>>>, usize) {
        let found = cache.get_many(texts).unwrap();
        (found.vectors.iter().map(bits).collect(), found.corrupt)
    }

    fn shard_of(cache: &EncodingCache, text: &str) -> PathBuf {
        cache.shard_path(usize::from(text_key(text)[0]))
    }

    /// `count` texts whose keys fall in the shard of `first`, `first` included.
    fn same_shard(first: &str, count: usize) -> Vec<String> {
        let shard = text_key(first)[0];
        std::iter::once(first.to_string())
            .chain((0..).map(|i| format!("text {i}")))
            .filter(|t| text_key(t)[0] == shard)
            .take(count)
            .collect()
    }

    #[test]
    fn a_miss_then_a_put_then_bit_identical_hits_in_order() {
        let (root, cache) = new_cache();
        assert_eq!(cache.dir(), root.path().join(KEY));
        assert!(cache.dir().is_dir());
        let texts = [
            "Floods hit the farms",
            "बाढ़ से खेतों को नुकसान",
            "",
            "not stored",
        ];
        assert_eq!(lookup(&cache, &texts), (vec![None; 4], 0));

        store(&cache, &texts[..3]);
        // Duplicates and a text never stored, in another order.
        let asked = [2, 0, 3, 2, 1].map(|i| texts[i]);
        let found = vec![want(2), want(0), None, want(2), want(1)];
        assert_eq!(lookup(&cache, &asked), (found.clone(), 0));
        // Another handle on the same directory finds them too.
        let again = EncodingCache::open(root.path(), KEY, DIM).unwrap();
        assert_eq!(lookup(&again, &asked), (found, 0));
    }

    #[test]
    fn a_damaged_record_is_a_miss_and_its_shard_is_repaired() {
        let (_root, cache) = new_cache();
        let texts = same_shard("first", 3);
        store(&cache, &texts);
        let path = shard_of(&cache, &texts[0]);
        let mut bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 3 * cache.record_len());
        // A byte of the second record's vector.
        bytes[cache.record_len() + KEY_LEN + 5] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();

        assert_eq!(lookup(&cache, &texts), (vec![want(0), None, want(2)], 1));
        // The shard was rewritten with its two sound records, and no temporary file is left.
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(size, 2 * cache.record_len() as u64);
        assert_eq!(std::fs::read_dir(cache.dir()).unwrap().count(), 1);
        assert_eq!(lookup(&cache, &texts), (vec![want(0), None, want(2)], 0));
    }

    #[test]
    fn a_truncated_record_is_a_miss_and_earlier_records_hit() {
        let (_root, cache) = new_cache();
        let texts = same_shard("truncated", 3);
        store(&cache, &texts);
        let path = shard_of(&cache, &texts[0]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        assert_eq!(lookup(&cache, &texts), (vec![want(0), want(1), None], 1));

        // Cut again, then written to: the new record lands aligned, after the sound ones.
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        store(&cache, &texts);
        assert_eq!(lookup(&cache, &texts), (vec![want(0), want(1), want(2)], 0));
    }

    #[test]
    fn a_text_already_stored_is_not_written_again() {
        let (_root, cache) = new_cache();
        let path = shard_of(&cache, "twice");
        let entries = [("twice", vector(1)), ("twice", vector(1))];
        cache.put_many(&entries).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(size, cache.record_len() as u64);
        cache.put_many(&[("twice", vector(2))]).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
        // The first vector stored stays.
        assert_eq!(lookup(&cache, &["twice"]), (vec![want(1)], 0));
    }

    #[test]
    fn open_refuses_keys_that_are_not_plain_names_and_clear_removes_everything() {
        let root = tempfile::tempdir().unwrap();
        for key in ["", ".", "..", "a/b", "../up", "a\\b", "é"] {
            let err = EncodingCache::open(root.path(), key, DIM).unwrap_err();
            let Error::Config { field, .. } = err else {
                panic!("{key:?}: {err}")
            };
            assert_eq!(field, "encoding_cache");
        }
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);

        let caches = root.path().join("caches");
        let cache = EncodingCache::open(&caches, "e5.small_t-128", DIM).unwrap();
        store(&cache, &["a text"]);
        EncodingCache::clear(&caches).unwrap();
        assert!(!caches.exists());
        EncodingCache::clear(&caches).unwrap();
        // A handle opened before the clear still works: a miss, then a put.
        assert_eq!(lookup(&cache, &["a text"]), (vec![None], 0));
        store(&cache, &["a text"]);
        assert_eq!(lookup(&cache, &["a text"]), (vec![want(0)], 0));
    }

    #[test]
    fn a_vector_of_the_wrong_length_is_an_error() {
        let (root, cache) = new_cache();
        let entries = [("good", vector(0)), ("short", vec![1.0; DIM - 1])];
        let err = cache.put_many(&entries).unwrap_err();
        assert!(matches!(err, Error::Internal(_)), "{err}");
        // Nothing was written, not even the good one.
        assert_eq!(lookup(&cache, &["good"]), (vec![None], 0));
        let empty = EncodingCache::open(root.path(), KEY, 0);
        assert!(matches!(empty, Err(Error::Internal(_))));
    }
}
