//! Which known key a misspelt one was meant to be (`pool_sise` for `pool_size`).

/// Whether `typed` looks like a slip of `known`: a few letters added, dropped, changed
/// or swapped (about one in three), or another case.
pub(super) fn is_near(typed: &str, known: &str) -> bool {
    if typed == known {
        return false;
    }
    let d = distance(&typed.to_ascii_lowercase(), &known.to_ascii_lowercase());
    d <= (known.chars().count() / 3).max(1)
}

/// Edit distance counting an insertion, deletion, substitution or swap of two
/// neighbouring characters as one edit (optimal string alignment).
pub(super) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * w + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut v = (d[(i - 1) * w + j] + 1)
                    .min(d[i * w + j - 1] + 1)
                    .min(d[(i - 1) * w + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(d[(i - 2) * w + j - 2] + 1);
                }
                v
            };
        }
    }
    d[a.len() * w + b.len()]
}
