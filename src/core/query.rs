// SPDX-License-Identifier: MPL-2.0
//! The rules every request query follows, for HTTP routes and action
//! signals alike: `name=value` pairs, percent-decoded; each name at most
//! once; values at most [`MAX_VALUE`] bytes and without surrounding
//! whitespace (in a URL a `+` is a space, so `duration=+5` is the value
//! `" 5"`, not 5).

/// Longest value accepted.
pub const MAX_VALUE: usize = 256;

/// A query's decoded pairs, in order, checked against the rules.
pub fn pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.trim_start_matches('?').as_bytes()) {
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("parameter {name} given twice"));
        }
        if value.len() > MAX_VALUE {
            return Err(format!("parameter {name} is longer than {MAX_VALUE} bytes"));
        }
        if value.trim() != value {
            return Err(format!(
                "parameter {name}: {value:?} has whitespace around it (in a URL \"+\" is a space)"
            ));
        }
        out.push((name.into_owned(), value.into_owned()));
    }
    Ok(out)
}

/// Like [`pairs`], with names outside `known` refused too.
pub fn known_pairs(query: &str, known: &[&str]) -> Result<Vec<(String, String)>, String> {
    let pairs = pairs(query)?;
    if let Some((name, _)) = pairs.iter().find(|(n, _)| !known.contains(&n.as_str())) {
        return Err(format!(
            "unknown parameter {name:?} (known: {})",
            known.join(", ")
        ));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_rule() {
        assert_eq!(
            pairs("?time=10s&duration=5").unwrap(),
            vec![
                ("time".to_string(), "10s".to_string()),
                ("duration".to_string(), "5".to_string())
            ]
        );
        assert_eq!(pairs("").unwrap(), vec![]);
        assert!(
            pairs("duration=1&duration=2")
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            pairs("a=1&accuracy=frame&accuracy=keyframe")
                .unwrap_err()
                .contains("twice")
        );
        assert!(pairs("duration=%205").unwrap_err().contains("whitespace"));
        assert!(
            pairs("duration=+5")
                .unwrap_err()
                .contains("\"+\" is a space")
        );
        assert!(pairs("duration=5%20").is_err());
        assert!(
            pairs(&format!("location={}", "a".repeat(257)))
                .unwrap_err()
                .contains("256")
        );
        assert!(pairs(&format!("location={}", "a".repeat(256))).is_ok());
        // A percent-encoded plus is a plus (a UTC offset).
        assert_eq!(
            pairs("time=2026-11-23T13:01:38%2B01:00").unwrap()[0].1,
            "2026-11-23T13:01:38+01:00"
        );
        assert!(known_pairs("duration=5&token=x", &["duration", "token"]).is_ok());
        assert!(
            known_pairs("durration=5", &["duration", "token"])
                .unwrap_err()
                .contains("durration")
        );
    }
}
