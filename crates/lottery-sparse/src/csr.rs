//! Compressed sparse rows for a pruned linear layer's weight (`[out, in]`, PyTorch's layout):
//! each output unit keeps the indices and values of its live inputs only.

/// A row-major sparse matrix with narrow (u32) column indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    pub rows: usize,
    pub cols: usize,
    /// `row_start[r]..row_start[r + 1]` indexes row r's entries; `rows + 1` long.
    pub row_start: Vec<u32>,
    pub col: Vec<u32>,
    pub val: Vec<f32>,
}

use crate::error::{Error, Problem};

/// A borrowed CSR matrix whose structure satisfies [`Csr::check`]'s invariants: what the kernels
/// read, from a [`Csr`] or from a training pattern with values that change every step. Built only
/// inside this crate, after the structure was checked.
#[derive(Debug, Clone, Copy)]
pub struct CsrRef<'a> {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) row_start: &'a [u32],
    pub(crate) col: &'a [u32],
    pub(crate) val: &'a [f32],
}

impl<'a> CsrRef<'a> {
    /// The entries of row `r`: column indices and values.
    #[inline(always)]
    pub fn row(&self, r: usize) -> (&'a [u32], &'a [f32]) {
        let (s, e) = (self.row_start[r] as usize, self.row_start[r + 1] as usize);
        (&self.col[s..e], &self.val[s..e])
    }
}

impl Csr {
    /// Keeps the nonzero entries of a dense row-major `rows × cols` matrix.
    pub fn from_dense(rows: usize, cols: usize, dense: &[f32]) -> Result<Self, Error> {
        if rows.checked_mul(cols) != Some(dense.len()) {
            return Err(Error::from(Problem::Shape {
                rows,
                cols,
                len: dense.len(),
            }));
        }
        if cols > u32::MAX as usize || dense.len() > u32::MAX as usize {
            return Err(Problem::TooWide { cols }.into());
        }
        let mut row_start = Vec::with_capacity(rows + 1);
        let (mut col, mut val) = (Vec::new(), Vec::new());
        row_start.push(0);
        for r in 0..rows {
            for (c, &v) in dense[r * cols..(r + 1) * cols].iter().enumerate() {
                if v != 0.0 {
                    col.push(c as u32);
                    val.push(v);
                }
            }
            row_start.push(col.len() as u32);
        }
        Ok(Csr {
            rows,
            cols,
            row_start,
            col,
            val,
        })
    }

    pub fn nnz(&self) -> usize {
        self.val.len()
    }

    /// Live fraction of the matrix.
    pub fn density(&self) -> f64 {
        self.nnz() as f64 / (self.rows * self.cols).max(1) as f64
    }

    /// The entries of row `r`: column indices and values.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        self.view().row(r)
    }

    /// The matrix as the kernels read it. Its invariants are the caller's to have checked
    /// ([`Csr::check`]): the kernels index without bounds checks.
    pub(crate) fn view(&self) -> CsrRef<'_> {
        CsrRef {
            rows: self.rows,
            cols: self.cols,
            row_start: &self.row_start,
            col: &self.col,
            val: &self.val,
        }
    }

    /// The matrix as dense row-major values.
    pub fn to_dense(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.rows * self.cols];
        for r in 0..self.rows {
            let (cols, vals) = self.row(r);
            for (&c, &v) in cols.iter().zip(vals) {
                out[r * self.cols + c as usize] = v;
            }
        }
        out
    }

    /// Checks the invariants every kernel relies on: row starts rise from 0 to the number of
    /// entries, and within a row the columns are in range and strictly increasing.
    pub fn check(&self) -> Result<(), Error> {
        self.invariants().map_err(Error::invalid)
    }

    /// What [`Csr::check`] finds, in words.
    pub(crate) fn invariants(&self) -> Result<(), String> {
        if self.row_start.len() != self.rows + 1 {
            return Err(format!(
                "{} row starts for {} rows",
                self.row_start.len(),
                self.rows
            ));
        }
        if self.col.len() != self.val.len() {
            return Err(format!(
                "{} column indices for {} values",
                self.col.len(),
                self.val.len()
            ));
        }
        if self.row_start[0] != 0 || self.row_start[self.rows] as usize != self.val.len() {
            return Err("row starts do not span the entries".into());
        }
        for r in 0..self.rows {
            let (s, e) = (self.row_start[r], self.row_start[r + 1]);
            if s > e || e as usize > self.val.len() {
                return Err(format!("row {r} starts after it ends"));
            }
            let cols = &self.col[s as usize..e as usize];
            if cols.iter().any(|&c| c as usize >= self.cols) {
                return Err(format!("row {r} has a column beyond {}", self.cols));
            }
            if cols.windows(2).any(|p| p[0] >= p[1]) {
                return Err(format!("row {r} has columns out of order"));
            }
        }
        Ok(())
    }

    /// `y = x Wᵀ + bias` for a batch `x` of `batch × cols`, written to `y` (`batch × rows`):
    /// the plain reference the fast kernels in `infer` are tested against.
    pub fn forward(&self, x: &[f32], batch: usize, bias: Option<&[f32]>, y: &mut [f32]) {
        assert_eq!(x.len(), batch * self.cols, "input is not batch × cols");
        assert_eq!(y.len(), batch * self.rows, "output is not batch × rows");
        for (xb, yb) in x.chunks_exact(self.cols).zip(y.chunks_exact_mut(self.rows)) {
            for (r, out) in yb.iter_mut().enumerate() {
                let (s, e) = (self.row_start[r] as usize, self.row_start[r + 1] as usize);
                let acc: f32 = self.col[s..e]
                    .iter()
                    .zip(&self.val[s..e])
                    .map(|(&c, &v)| v * xb[c as usize])
                    .sum();
                *out = acc + bias.map_or(0.0, |b| b[r]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_dense_product() {
        let (rows, cols, batch) = (5, 7, 3);
        let dense: Vec<f32> = (0..rows * cols)
            .map(|i| {
                if i % 3 == 0 {
                    i as f32 * 0.5 - 4.0
                } else {
                    0.0
                }
            })
            .collect();
        let x: Vec<f32> = (0..batch * cols).map(|i| (i as f32).sin()).collect();
        let bias: Vec<f32> = (0..rows).map(|r| r as f32).collect();
        let csr = Csr::from_dense(rows, cols, &dense).unwrap();
        assert_eq!(csr.nnz(), dense.iter().filter(|&&v| v != 0.0).count());
        let mut y = vec![0.0; batch * rows];
        csr.forward(&x, batch, Some(&bias), &mut y);
        for b in 0..batch {
            for r in 0..rows {
                let want: f32 = (0..cols)
                    .map(|c| dense[r * cols + c] * x[b * cols + c])
                    .sum::<f32>()
                    + bias[r];
                assert!((y[b * rows + r] - want).abs() < 1e-5);
            }
        }
        assert_eq!(
            Csr::from_dense(2, 2, &[1.0]).unwrap_err().problem(),
            Some(&crate::error::Problem::Shape {
                rows: 2,
                cols: 2,
                len: 1
            })
        );
    }
}
