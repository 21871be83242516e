//! Statistics over rounds and the way numbers are printed.

/// The median; NaN for no values.
pub(crate) fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// The `q` quantile (0..=1), interpolating between the two nearest values; NaN for no values.
pub(crate) fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let at = (v.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let (low, high) = (at.floor() as usize, at.ceil() as usize);
    v[low] + (v[high] - v[low]) * (at - low as f64)
}

/// A ratio over rounds as `median [q1–q3]`, the interquartile range showing how far noise
/// moved it.
pub(crate) fn spread(values: &[f64]) -> String {
    if values.is_empty() {
        return "n/a".to_owned();
    }
    format!(
        "{:.2} [{:.2}–{:.2}]",
        median(values),
        quantile(values, 0.25),
        quantile(values, 0.75)
    )
}

/// Each value with two decimals, separated by spaces.
pub(crate) fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|r| format!("{r:.2}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Cycles/s compactly: 812k, 1.23M.
pub(crate) fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Microseconds with three significant digits or so.
pub(crate) fn micros(us: f64) -> String {
    if us.is_nan() {
        "".to_owned()
    } else if us < 10.0 {
        format!("{us:.2}")
    } else if us < 100.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

/// 1234567 as 1,234,567.
pub(crate) fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_quartiles_interpolate() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!((quantile(&v, 0.25), quantile(&v, 0.75)), (2.0, 4.0));
        assert_eq!(spread(&v), "3.00 [2.00–4.00]");
        assert_eq!(spread(&[]), "n/a");
    }

    #[test]
    fn numbers_print_compactly() {
        assert_eq!(
            (
                rate(1_234_567.0),
                rate(81_200.0),
                rate(5_500.0),
                rate(912.0)
            ),
            ("1.23M".into(), "81k".into(), "5.5k".into(), "912".into())
        );
        assert_eq!(
            (micros(3.621), micros(43.71), micros(172.4)),
            ("3.62".into(), "43.7".into(), "172".into())
        );
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }
}
