//! Finding a city named in free text — a signature ("City of Dayton, OH", "Mayor's Office,
//! Flint MI"), a subject, or an official's answer to "which city do you represent?"
//! ("Dayton, Ohio"). Pure. A name found this way is a suggestion for review, except where the
//! official answers our question in their own thread (see [`crate::intake`]).

use crate::domain::city::CityRow;

/// Two-letter code and full name of each state, DC and the territories.
const STATE_NAMES: [(&str, &str); 56] = [
    ("AL", "Alabama"),
    ("AK", "Alaska"),
    ("AZ", "Arizona"),
    ("AR", "Arkansas"),
    ("CA", "California"),
    ("CO", "Colorado"),
    ("CT", "Connecticut"),
    ("DE", "Delaware"),
    ("FL", "Florida"),
    ("GA", "Georgia"),
    ("HI", "Hawaii"),
    ("ID", "Idaho"),
    ("IL", "Illinois"),
    ("IN", "Indiana"),
    ("IA", "Iowa"),
    ("KS", "Kansas"),
    ("KY", "Kentucky"),
    ("LA", "Louisiana"),
    ("ME", "Maine"),
    ("MD", "Maryland"),
    ("MA", "Massachusetts"),
    ("MI", "Michigan"),
    ("MN", "Minnesota"),
    ("MS", "Mississippi"),
    ("MO", "Missouri"),
    ("MT", "Montana"),
    ("NE", "Nebraska"),
    ("NV", "Nevada"),
    ("NH", "New Hampshire"),
    ("NJ", "New Jersey"),
    ("NM", "New Mexico"),
    ("NY", "New York"),
    ("NC", "North Carolina"),
    ("ND", "North Dakota"),
    ("OH", "Ohio"),
    ("OK", "Oklahoma"),
    ("OR", "Oregon"),
    ("PA", "Pennsylvania"),
    ("RI", "Rhode Island"),
    ("SC", "South Carolina"),
    ("SD", "South Dakota"),
    ("TN", "Tennessee"),
    ("TX", "Texas"),
    ("UT", "Utah"),
    ("VT", "Vermont"),
    ("VA", "Virginia"),
    ("WA", "Washington"),
    ("WV", "West Virginia"),
    ("WI", "Wisconsin"),
    ("WY", "Wyoming"),
    ("DC", "District of Columbia"),
    ("PR", "Puerto Rico"),
    ("GU", "Guam"),
    ("VI", "Virgin Islands"),
    ("AS", "American Samoa"),
    ("MP", "Northern Mariana Islands"),
];

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '\''
}

/// Whether `needle` occurs in `hay` (both lower-case) as whole words, returning the byte offset
/// just after each occurrence.
fn word_ends(hay: &str, needle: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let start = from + i;
        let end = start + needle.len();
        let before_ok = hay[..start].chars().next_back().is_none_or(|c| !is_word_char(c));
        let after_ok = hay[end..].chars().next().is_none_or(|c| !is_word_char(c));
        if before_ok && after_ok {
            out.push(end);
        }
        from = start + needle.len().max(1);
        while !hay.is_char_boundary(from) && from < hay.len() {
            from += 1;
        }
    }
    out
}

/// Whether the text right after a city name names `state` ("OH", "Ohio", ", OH", " Ohio 45402").
fn state_follows(rest: &str, code: &str) -> bool {
    let rest = rest.trim_start_matches([',', ' ', '\t', '.']);
    let name = STATE_NAMES.iter().find(|(c, _)| *c == code).map(|(_, n)| n.to_lowercase()).unwrap_or_default();
    let starts_word = |w: &str| rest.starts_with(w) && rest[w.len()..].chars().next().is_none_or(|c| !is_word_char(c));
    starts_word(&code.to_lowercase()) || (!name.is_empty() && starts_word(&name))
}

/// Every registry city named in `text` together with its state, e.g. "Dayton, OH",
/// "Dayton, Ohio", "Flint MI", "City of Dayton, OH 45402". Each city once, in registry order.
pub fn cities_named(text: &str, cities: &[CityRow]) -> Vec<CityRow> {
    let hay = text.to_lowercase();
    cities
        .iter()
        .filter(|c| {
            let name = c.record.name.to_lowercase();
            !name.is_empty()
                && word_ends(&hay, &name).into_iter().any(|end| state_follows(&hay[end..], &c.record.state))
        })
        .cloned()
        .collect()
}

/// The lines most likely to carry a signature: the last 12 non-empty lines of the text.
pub fn signature_block(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('>')).collect();
    lines[lines.len().saturating_sub(12)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::test_city;

    fn city(id: i64, name: &str, state: &str) -> CityRow {
        test_city(id, name, state, &[], true)
    }

    #[test]
    fn names_with_state_codes_or_names_are_found() {
        let reg = vec![
            city(1, "Dayton", "OH"),
            city(2, "Flint", "MI"),
            city(3, "Springfield", "IL"),
            city(4, "Springfield", "MO"),
        ];
        let ids = |t: &str| cities_named(t, &reg).iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids("Jane Rivera\nCity of Dayton, OH 45402"), vec![1]);
        assert_eq!(ids("We are in Dayton, Ohio."), vec![1]);
        assert_eq!(ids("Mayor's Office, Flint MI"), vec![2]);
        assert_eq!(ids("springfield, missouri"), vec![4]);
        assert_eq!(ids("Springfield"), Vec::<i64>::new(), "a name without its state is not enough");
        assert_eq!(ids("Daytona, OH"), Vec::<i64>::new(), "whole words only");
        assert_eq!(ids("Dayton, OK"), Vec::<i64>::new(), "the state must match");
        assert_eq!(ids("Dayton, OH and Flint, Michigan"), vec![1, 2]);
    }

    #[test]
    fn signature_block_is_the_tail() {
        let text = (1..=20).map(|i| format!("line {i}")).collect::<Vec<_>>().join("\n");
        let sig = signature_block(&text);
        assert!(sig.starts_with("line 9") && sig.ends_with("line 20"), "{sig}");
    }
}
