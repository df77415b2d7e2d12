//! The little dense linear algebra the fits need: a symmetric positive
//! definite solve and inverse by Cholesky. Matrices are row-major `n × n`.
//! (Tens to a few hundred models: a dense O(n³) factorization per Newton
//! step costs microseconds to milliseconds, less than reading the battles.)

/// Factors the SPD matrix `a` in place into its lower Cholesky factor.
/// Returns `false` when `a` is not (numerically) positive definite.
pub(crate) fn cholesky(a: &mut [f64], n: usize) -> bool {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d.is_nan() || d <= 0.0 {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    true
}

/// Solves `L Lᵀ x = b` in place, `l` from [`cholesky`].
pub(crate) fn cholesky_solve(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// The inverse of the SPD matrix whose Cholesky factor is `l`.
pub(crate) fn cholesky_inverse(l: &[f64], n: usize) -> Vec<f64> {
    let mut inverse = vec![0.0; n * n];
    let mut column = vec![0.0; n];
    for j in 0..n {
        column.iter_mut().for_each(|x| *x = 0.0);
        column[j] = 1.0;
        cholesky_solve(l, n, &mut column);
        for i in 0..n {
            inverse[i * n + j] = column[i];
        }
    }
    inverse
}

/// `a · b` for `n × n` matrices.
pub(crate) fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let x = a[i * n + k];
            if x == 0.0 {
                continue;
            }
            for j in 0..n {
                out[i * n + j] += x * b[k * n + j];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_and_inverts_a_small_spd_system() {
        let a = vec![4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let mut l = a.clone();
        assert!(cholesky(&mut l, 3));
        let mut b = vec![1.0, 2.0, 3.0];
        cholesky_solve(&l, 3, &mut b);
        for i in 0..3 {
            let row: f64 = (0..3).map(|k| a[i * 3 + k] * b[k]).sum();
            assert!((row - [1.0, 2.0, 3.0][i]).abs() < 1e-12);
        }
        let product = matmul(&a, &cholesky_inverse(&l, 3), 3);
        for i in 0..3 {
            for j in 0..3 {
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((product[i * 3 + j] - expected).abs() < 1e-12);
            }
        }
        let mut not_pd = vec![1.0, 2.0, 2.0, 1.0];
        assert!(!cholesky(&mut not_pd, 2));
    }
}
