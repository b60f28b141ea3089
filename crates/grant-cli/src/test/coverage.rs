//! Rule coverage: which rules of a policy some case made apply (a rule is
//! covered when it is among the deciding rules of a case's actual decision),
//! and the minimum a run may demand, compared in exact integer arithmetic.

use std::collections::HashSet;

use grant_engine::{Decision, Engine};

/// A percentage given on the command line, kept as the exact fraction
/// `numerator / denominator` percent: `99.9` is 999/10.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Percent {
    numerator: u128,
    denominator: u128,
    /// Digits after the point, to print it back as written.
    decimals: u32,
}

/// Most digits accepted after the point: more would not change any
/// comparison with rule counts that fit in memory, and would overflow.
const MAX_DECIMALS: u32 = 18;

impl Percent {
    /// Parses `87.5`, `100`, `0`, `99.99`: digits, optionally a point and
    /// more digits, from 0 to 100.
    pub fn parse(text: &str) -> Result<Percent, String> {
        let malformed = || {
            format!(
                "`{text}` is not a percentage: write a number from 0 to 100, such as `90` or `87.5`"
            )
        };
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (text, ""),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (text.contains('.') && !digits(fraction)) {
            return Err(malformed());
        }
        let decimals = u32::try_from(fraction.len()).unwrap_or(u32::MAX);
        if decimals > MAX_DECIMALS {
            return Err(format!(
                "`{text}` has more than {MAX_DECIMALS} digits after the point"
            ));
        }
        // Leading zeros cannot overflow, other digits beyond 100 are out
        // of range anyway: parse the whole part after trimming them.
        let whole = whole.trim_start_matches('0');
        if whole.len() > 3 {
            return Err(format!("`{text}` is not between 0 and 100"));
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| malformed())?
        };
        let fraction_value: u128 = if fraction.is_empty() {
            0
        } else {
            fraction.parse().map_err(|_| malformed())?
        };
        let denominator = 10u128.pow(decimals);
        let numerator = whole * denominator + fraction_value;
        if numerator > 100 * denominator {
            return Err(format!("`{text}` is not between 0 and 100"));
        }
        Ok(Percent {
            numerator,
            denominator,
            decimals,
        })
    }

    /// Whether `covered` of `total` is at least this percentage:
    /// `covered / total * 100 >= numerator / denominator`, in integers.
    /// No rules at all is full coverage.
    pub fn reached_by(self, covered: usize, total: usize) -> bool {
        let covered = covered as u128;
        let total = total as u128;
        covered * 100 * self.denominator >= self.numerator * total
    }
}

impl std::fmt::Display for Percent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let whole = self.numerator / self.denominator;
        if self.decimals == 0 {
            return write!(f, "{whole}%");
        }
        let fraction = self.numerator % self.denominator;
        write!(
            f,
            "{whole}.{fraction:0width$}%",
            width = self.decimals as usize
        )
    }
}

/// The rules of one policy, and which of them some case made apply.
#[derive(Debug)]
pub struct Coverage {
    pub total: usize,
    pub uncovered: Vec<Uncovered>,
}

/// A rule no case made apply, with where it is.
#[derive(Debug)]
pub struct Uncovered {
    pub id: String,
    pub file: String,
    pub line: usize,
}

impl Coverage {
    /// The coverage of `engine`'s rules by `decisions`.
    pub fn of<'d>(engine: &Engine, decisions: impl IntoIterator<Item = &'d Decision>) -> Coverage {
        let applied: HashSet<&str> = decisions
            .into_iter()
            .flat_map(|d| d.rules.iter().map(|r| r.id.as_str()))
            .collect();
        let rules = engine.rules();
        let uncovered = rules
            .iter()
            .filter(|rule| !applied.contains(rule.id.as_str()))
            .map(|rule| Uncovered {
                id: rule.id.clone(),
                file: rule.file.clone(),
                line: rule.line,
            })
            .collect();
        Coverage {
            total: rules.len(),
            uncovered,
        }
    }

    pub fn covered(&self) -> usize {
        self.total - self.uncovered.len()
    }

    /// The percentage rounded down to a tenth: `66.6%` for 2 of 3, so that
    /// the figure shown always passes `--coverage-min` with that figure.
    /// No rules at all shows as `100.0%`.
    pub fn shown(&self) -> String {
        let tenths = if self.total == 0 {
            1000
        } else {
            self.covered() as u128 * 1000 / self.total as u128
        };
        format!("{}.{}%", tenths / 10, tenths % 10)
    }

    /// The percentage as a float, for machines.
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            self.covered() as f64 * 100.0 / self.total as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Percent;

    fn p(text: &str) -> Percent {
        Percent::parse(text).unwrap_or(Percent {
            numerator: u128::MAX,
            denominator: 1,
            decimals: 0,
        })
    }

    #[test]
    fn percentages_are_exact() {
        assert!(p("99.9").reached_by(999, 1000));
        assert!(!p("100").reached_by(999, 1000));
        assert!(p("66.6").reached_by(2, 3));
        assert!(!p("66.7").reached_by(2, 3));
        assert!(p("66.666666666666666").reached_by(2, 3));
        assert!(!p("66.666666666666667").reached_by(2, 3));
        assert!(p("87.5").reached_by(7, 8));
        assert!(p("100").reached_by(0, 0));
        assert!(p("0").reached_by(0, 5));
        assert!(p("100.000").reached_by(4, 4));
        assert!(p("007").reached_by(7, 100));
    }

    #[test]
    fn malformed_or_out_of_range_percentages_are_refused() {
        for bad in [
            "",
            "abc",
            "-1",
            "100.1",
            "101",
            "1e2",
            "5.",
            ".5",
            "50%",
            " 50",
            "1.2.3",
            "+5",
            "1000000000000000000000000000000000000000",
            "1.0000000000000000000",
        ] {
            assert!(Percent::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percentages_print_as_written() {
        assert_eq!(p("99.9").to_string(), "99.9%");
        assert_eq!(p("100").to_string(), "100%");
        assert_eq!(p("66.60").to_string(), "66.60%");
        assert_eq!(p("0.05").to_string(), "0.05%");
    }
}
