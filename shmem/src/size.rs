//! Overflow-checked size arithmetic and PostgreSQL's alignment macros.

/// PostgreSQL's `MAXIMUM_ALIGNOF` on 64-bit platforms.
pub const MAXIMUM_ALIGNOF: usize = 8;
/// PostgreSQL's `PG_CACHE_LINE_SIZE`: every Shmem allocation starts on such a boundary.
pub const CACHE_LINE_SIZE: usize = 128;
/// PostgreSQL's `ALIGNOF_BUFFER`.
pub const ALIGNOF_BUFFER: usize = 32;

/// A size computation overflowed (PostgreSQL's `ERRCODE_PROGRAM_LIMIT_EXCEEDED`, 54000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// `a + b` does not fit in `usize`.
    #[error("invalid memory allocation request size {0} + {1}")]
    Add(usize, usize),
    /// `a * b` does not fit in `usize`.
    #[error("invalid memory allocation request size {0} * {1}")]
    Mul(usize, usize),
}

impl SizeError {
    /// The SQLSTATE PostgreSQL reports for this error.
    pub const fn sqlstate(&self) -> &'static str {
        "54000"
    }
}

/// `a + b`, or an error if it overflows (PostgreSQL's `add_size`).
pub fn add_size(a: usize, b: usize) -> Result<usize, SizeError> {
    a.checked_add(b).ok_or(SizeError::Add(a, b))
}

/// `a * b`, or an error if it overflows (PostgreSQL's `mul_size`).
pub fn mul_size(a: usize, b: usize) -> Result<usize, SizeError> {
    a.checked_mul(b).ok_or(SizeError::Mul(a, b))
}

/// Rounds `len` up to a multiple of `align` (a power of two); errors on overflow.
pub fn type_align(align: usize, len: usize) -> Result<usize, SizeError> {
    debug_assert!(align.is_power_of_two());
    Ok(add_size(len, align - 1)? & !(align - 1))
}

/// `type_align(MAXIMUM_ALIGNOF, len)` (PostgreSQL's `MAXALIGN`).
pub fn maxalign(len: usize) -> Result<usize, SizeError> {
    type_align(MAXIMUM_ALIGNOF, len)
}

/// `type_align(CACHE_LINE_SIZE, len)` (PostgreSQL's `CACHELINEALIGN`).
pub fn cachelinealign(len: usize) -> Result<usize, SizeError> {
    type_align(CACHE_LINE_SIZE, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_messages() {
        assert_eq!(add_size(1, 2), Ok(3));
        assert_eq!(mul_size(3, 4), Ok(12));
        assert_eq!(
            add_size(usize::MAX, 1).unwrap_err().to_string(),
            format!("invalid memory allocation request size {} + 1", usize::MAX)
        );
        assert_eq!(
            mul_size(usize::MAX / 2, 3).unwrap_err().to_string(),
            format!(
                "invalid memory allocation request size {} * 3",
                usize::MAX / 2
            )
        );
        assert_eq!(cachelinealign(1), Ok(128));
        assert_eq!(cachelinealign(128), Ok(128));
        assert_eq!(maxalign(9), Ok(16));
        assert!(cachelinealign(usize::MAX).is_err());
    }
}
