//! Resource quantities (`500m`, `64Mi`, `1.5`, `2e3`), as `k8s.io/apimachinery`'s
//! `resource.Quantity` reads them, for comparisons: a quantity's value in billionths of its
//! unit (nano-cores, nano-bytes), exact for every suffix down to `n`.

/// The value of `text` in billionths, or `None` when it is not a quantity.
pub fn nanos(text: &str) -> Option<i128> {
    let text = text.trim();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    // Powers of ten (decimal suffixes and exponents) and of two (binary suffixes).
    let (ten, two): (i32, u32) = match suffix {
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "" => (0, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        s => {
            let exponent = s.strip_prefix(['e', 'E'])?;
            (exponent.parse::<i32>().ok().filter(|e| e.abs() <= 18)?, 0)
        }
    };
    // The digits as one integer, scaled by 10^(9 + ten - fraction digits).
    let mut value: i128 = 0;
    for c in whole.chars().chain(fraction.chars()) {
        value = value.checked_mul(10)?.checked_add(i128::from(c.to_digit(10)?))?;
    }
    let scale = 9 + ten - i32::try_from(fraction.len()).ok()?;
    let value = if scale >= 0 {
        value.checked_mul(10i128.checked_pow(scale.unsigned_abs())?)?
    } else {
        // Below a billionth: rounded up, as Quantity rounds to its smallest scale.
        let divisor = 10i128.checked_pow(scale.unsigned_abs())?;
        (value + divisor - 1) / divisor
    };
    let value = value.checked_mul(1i128.checked_shl(two)?)?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::nanos;

    #[test]
    fn quantities_read_as_kube_apiserver_reads_them() {
        assert_eq!(nanos("1"), nanos("1000m"));
        assert_eq!(nanos("500m"), Some(500_000_000));
        assert_eq!(nanos("0.5"), nanos("500m"));
        assert_eq!(nanos("64Mi"), Some(64 * 1024 * 1024 * 1_000_000_000));
        assert_eq!(nanos("1k"), nanos("1e3"));
        assert_eq!(nanos("1Gi"), nanos("1024Mi"));
        assert_eq!(nanos("100n"), Some(100));
        assert_eq!(nanos("-2"), Some(-2_000_000_000));
        assert!(nanos("1Gi").expect("1Gi") > nanos("1G").expect("1G"));
        for bad in ["", "m", "1.2.3", "1x", "abc", "1e99", "Mi"] {
            assert_eq!(nanos(bad), None, "{bad:?}");
        }
    }
}
