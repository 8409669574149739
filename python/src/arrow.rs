//! Arrow string arrays in, label and score columns out, through the Arrow C Data Interface
//! (<https://arrow.apache.org/docs/format/CDataInterface.html>) and its PyCapsule protocol
//! (`__arrow_c_array__`), without the `arrow` crate: the texts are read in place from the
//! producer's buffers (no Python strings, no copy), and the output columns are plain buffers
//! that the Python side wraps with `pyarrow.Array.from_buffers`.

use std::borrow::Cow;
use std::ffi::{c_char, c_void, CStr};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use pyo3::types::PyCapsuleMethods;

/// `struct ArrowSchema` of the C Data Interface.
#[repr(C)]
struct FfiSchema {
    format: *const c_char,
    name: *const c_char,
    metadata: *const c_char,
    flags: i64,
    n_children: i64,
    children: *mut *mut FfiSchema,
    dictionary: *mut FfiSchema,
    release: Option<unsafe extern "C" fn(*mut FfiSchema)>,
    private_data: *mut c_void,
}

/// `struct ArrowArray` of the C Data Interface.
#[repr(C)]
struct FfiArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const c_void,
    children: *mut *mut FfiArray,
    dictionary: *mut FfiArray,
    release: Option<unsafe extern "C" fn(*mut FfiArray)>,
    private_data: *mut c_void,
}

/// The offsets of a string array: 32-bit (`utf8`) or 64-bit (`large_utf8`).
enum Offsets<'a> {
    Small(Cow<'a, [i32]>),
    Large(Cow<'a, [i64]>),
}

/// A string array read in place: borrowed from the capsules it came from, which must outlive
/// it (the borrow checker sees to that).
pub struct StringInput<'a> {
    len: usize,
    /// The first element's index in the buffers.
    offset: usize,
    null_count: usize,
    /// The validity bitmap (bit `offset + i` for element `i`), absent when nothing is null.
    validity: Option<&'a [u8]>,
    offsets: Offsets<'a>,
    data: &'a [u8],
}

/// A buffer of `n` values of `T` at `ptr`, borrowed when aligned for `T`, copied otherwise (the
/// C Data Interface recommends, but does not require, aligned buffers).
///
/// # Safety
/// `ptr` must point to at least `n` readable values of `T` that stay valid for `'a`.
unsafe fn buffer<'a, T: Copy>(ptr: *const c_void, n: usize) -> Cow<'a, [T]> {
    let ptr = ptr.cast::<T>();
    if n == 0 {
        return Cow::Borrowed(&[]);
    }
    if (ptr as usize) % std::mem::align_of::<T>() == 0 {
        Cow::Borrowed(std::slice::from_raw_parts(ptr, n))
    } else {
        Cow::Owned((0..n).map(|i| ptr.add(i).read_unaligned()).collect())
    }
}

impl<'a> StringInput<'a> {
    /// Reads the array behind the two capsules of `__arrow_c_array__`.
    pub fn from_capsules(
        schema: &'a Bound<'_, PyAny>,
        array: &'a Bound<'_, PyAny>,
    ) -> PyResult<StringInput<'a>> {
        let not_capsules = || {
            PyTypeError::new_err(
                "__arrow_c_array__ did not return an (arrow_schema, arrow_array) pair of capsules",
            )
        };
        let schema = schema.cast::<PyCapsule>().map_err(|_| not_capsules())?;
        let array = array.cast::<PyCapsule>().map_err(|_| not_capsules())?;
        let schema = schema
            .pointer_checked(Some(c"arrow_schema"))
            .map_err(|_| not_capsules())?
            .cast::<FfiSchema>();
        let array = array
            .pointer_checked(Some(c"arrow_array"))
            .map_err(|_| not_capsules())?
            .cast::<FfiArray>();
        // SAFETY: the capsules are named as the protocol names them, so they hold these
        // structs; they stay alive (and unreleased) for 'a, as the borrow of them says.
        let (schema, array): (&'a FfiSchema, &'a FfiArray) =
            unsafe { (schema.as_ref(), array.as_ref()) };
        if schema.release.is_none() || array.release.is_none() {
            return Err(PyValueError::new_err(
                "the Arrow array was released already (a capsule may be read once)",
            ));
        }
        // SAFETY: a live schema's format is a NUL-terminated string.
        let format = unsafe { CStr::from_ptr(schema.format) }.to_bytes();
        let large = match format {
            b"u" => false,
            b"U" => true,
            other => {
                return Err(PyTypeError::new_err(format!(
                    "expected an Arrow array of strings (utf8 or large_utf8), got Arrow format \
                     {:?}{}",
                    String::from_utf8_lossy(other),
                    if other == b"vu" {
                        " (string_view: cast it to pyarrow.string() first)"
                    } else {
                        ""
                    }
                )))
            }
        };
        let (Ok(len), Ok(offset)) = (usize::try_from(array.length), usize::try_from(array.offset))
        else {
            return Err(PyValueError::new_err(
                "invalid Arrow array: negative length or offset",
            ));
        };
        if array.n_buffers != 3 {
            return Err(PyValueError::new_err(format!(
                "invalid Arrow string array: {} buffers where 3 are expected",
                array.n_buffers
            )));
        }
        if len == 0 {
            return Ok(StringInput {
                len,
                offset: 0,
                null_count: 0,
                validity: None,
                offsets: Offsets::Small(Cow::Borrowed(&[0])),
                data: &[],
            });
        }
        // SAFETY: a string array has three buffers: validity (may be null), offsets, data.
        let buffers = unsafe { std::slice::from_raw_parts(array.buffers, 3) };
        let validity = if buffers[0].is_null() {
            None
        } else {
            // SAFETY: the bitmap holds at least `offset + len` bits.
            Some(unsafe {
                std::slice::from_raw_parts(buffers[0].cast::<u8>(), (offset + len).div_ceil(8))
            })
        };
        if buffers[1].is_null() {
            return Err(PyValueError::new_err(
                "invalid Arrow string array: no offsets buffer",
            ));
        }
        // SAFETY: the offsets buffer holds `offset + len + 1` values of its width.
        let offsets = unsafe {
            if large {
                Offsets::Large(buffer::<i64>(buffers[1], offset + len + 1))
            } else {
                Offsets::Small(buffer::<i32>(buffers[1], offset + len + 1))
            }
        };
        let end = match &offsets {
            Offsets::Small(o) => i64::from(o[offset + len]),
            Offsets::Large(o) => o[offset + len],
        };
        let end = usize::try_from(end)
            .map_err(|_| PyValueError::new_err("invalid Arrow string array: negative offset"))?;
        let data = if end == 0 || buffers[2].is_null() {
            &[][..]
        } else {
            // SAFETY: the data buffer holds at least the last offset's bytes.
            unsafe { std::slice::from_raw_parts(buffers[2].cast::<u8>(), end) }
        };
        let mut input = StringInput {
            len,
            offset,
            null_count: 0,
            validity,
            offsets,
            data,
        };
        input.null_count = match (validity, usize::try_from(array.null_count)) {
            (None, _) => 0,
            (Some(_), Ok(n)) => n,
            // -1: the producer did not count them.
            (Some(_), Err(_)) => (0..len).filter(|&i| !input.is_valid(i)).count(),
        };
        if input.null_count == 0 {
            input.validity = None;
        }
        Ok(input)
    }

    /// Nulls in the array.
    pub fn null_count(&self) -> usize {
        self.null_count
    }

    /// The index of the first null, if any.
    pub fn first_null(&self) -> Option<usize> {
        (0..self.len).find(|&i| !self.is_valid(i))
    }

    fn is_valid(&self, i: usize) -> bool {
        match self.validity {
            None => true,
            Some(bits) => {
                let bit = self.offset + i;
                bits[bit / 8] & (1 << (bit % 8)) != 0
            }
        }
    }

    /// The bytes of element `i`, checked against the data buffer.
    fn bytes(&self, i: usize) -> Result<&[u8], String> {
        let j = self.offset + i;
        let (start, end) = match &self.offsets {
            Offsets::Small(o) => (i64::from(o[j]), i64::from(o[j + 1])),
            Offsets::Large(o) => (o[j], o[j + 1]),
        };
        match (usize::try_from(start), usize::try_from(end)) {
            (Ok(s), Ok(e)) if s <= e && e <= self.data.len() => Ok(&self.data[s..e]),
            _ => Err(format!(
                "invalid Arrow string array: element {i} has offsets {start}..{end} outside its \
                 data buffer"
            )),
        }
    }
}

/// The output columns, as buffers: `label` (utf8, or large_utf8 when over 2 GiB) and `score`
/// (float32), sharing the input's validity.
pub struct Output {
    pub len: usize,
    pub null_count: usize,
    /// The validity bitmap from bit 0, absent when nothing is null.
    pub validity: Option<Vec<u8>>,
    /// Little-endian i32 offsets (i64 when `large`).
    pub offsets: Vec<u8>,
    pub data: Vec<u8>,
    pub large: bool,
    /// Little-endian f32 scores (0 at the nulls).
    pub scores: Vec<u8>,
}

/// Classifies the non-null texts of `input` on `clf`'s threads: each row's best label (the
/// `unsure_label` when its probability is under `threshold`) and that probability.
pub fn classify(
    clf: &khabar::Classifier,
    input: &StringInput<'_>,
    threshold: Option<f32>,
    unsure_label: &str,
) -> PyResult<Output> {
    let mut texts: Vec<&str> = Vec::with_capacity(input.len - input.null_count);
    for i in 0..input.len {
        if !input.is_valid(i) {
            continue;
        }
        let bytes = input.bytes(i).map_err(PyValueError::new_err)?;
        let text = std::str::from_utf8(bytes).map_err(|e| {
            PyValueError::new_err(format!(
                "invalid Arrow string array: element {i} is not UTF-8 ({e})"
            ))
        })?;
        texts.push(text);
    }
    let probs = clf.probabilities_batch(&texts).map_err(crate::to_py_err)?;
    drop(texts);
    let labels = clf.labels();
    let best: Vec<(usize, f32)> = probs
        .iter()
        .map(|p| {
            // The first of equal scores, as `Prediction::top` orders them.
            let mut b = 0;
            for (k, &s) in p.iter().enumerate() {
                if s > p[b] {
                    b = k;
                }
            }
            (b, p[b])
        })
        .collect();
    let name = |&(b, s): &(usize, f32)| -> &str {
        match threshold {
            Some(t) if s < t => unsure_label,
            _ => labels[b].as_str(),
        }
    };
    let total: usize = best.iter().map(|b| name(b).len()).sum();
    let large = total > i32::MAX as usize;
    let width = if large { 8 } else { 4 };
    let mut offsets = Vec::with_capacity((input.len + 1) * width);
    let mut data = Vec::with_capacity(total);
    let mut scores = Vec::with_capacity(input.len * 4);
    let push_offset = |offsets: &mut Vec<u8>, at: usize| {
        if large {
            offsets.extend_from_slice(&(at as i64).to_le_bytes());
        } else {
            offsets.extend_from_slice(&(at as i32).to_le_bytes());
        }
    };
    push_offset(&mut offsets, 0);
    let mut next = best.iter();
    for i in 0..input.len {
        if input.is_valid(i) {
            let b = next.next().expect("one score per valid text");
            data.extend_from_slice(name(b).as_bytes());
            scores.extend_from_slice(&b.1.to_le_bytes());
        } else {
            scores.extend_from_slice(&0f32.to_le_bytes());
        }
        push_offset(&mut offsets, data.len());
    }
    let validity = (input.null_count > 0).then(|| {
        let mut bits = vec![0u8; input.len.div_ceil(8)];
        for i in 0..input.len {
            if input.is_valid(i) {
                bits[i / 8] |= 1 << (i % 8);
            }
        }
        bits
    });
    Ok(Output {
        len: input.len,
        null_count: input.null_count,
        validity,
        offsets,
        data,
        large,
        scores,
    })
}
