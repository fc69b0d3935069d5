//! Whether staff-written text already greets its reader, so a template does not put its own
//! "Dear …" above it.
//!
//! Owns: the salutation and title word lists and the shape rules. Talks to: nothing.

/// Whether staff-written text opens with a greeting of its own ("Dear Mayor Rivera,", "Hi Jane,",
/// "Hello all:", "Good morning, Mayor."), judged on its first non-empty line: it starts with a
/// salutation word, and either ends with `,` `:` `!` or `.` or is at most four words. A sentence
/// that merely starts with such a word ("Hiring is …", "Hi-res maps …", "Dearborn's plan …",
/// "Dear colleagues in Ohio do this") is not one; nor is "Mayor …" unless it is a short line
/// ending with `,` or `:` ("Mayor Rivera,"). So is the official's name or a title alone
/// ("Jane,", "Madam Mayor,", "Members of the Council,"): see [`addresses_by_name`].
pub fn opens_with_greeting(text: &str, official_name: &str) -> bool {
    const SALUTATIONS: [&str; 11] = [
        "dear",
        "hi",
        "hello",
        "hey",
        "greetings",
        "good morning",
        "good afternoon",
        "good evening",
        "good day",
        "to whom it may concern",
        "mayor",
    ];
    let mut lines = text
        .lines()
        .map(|l| l.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}'))
        .skip_while(|l| l.is_empty());
    // Markdown emphasis around the whole line ("**Dear Mayor,**") does not change what it says.
    let Some(line) = lines.next().map(|l| l.trim_matches(['*', '_']).trim()) else { return false };
    if line.chars().count() > 80 {
        return false;
    }
    if addresses_by_name(line, lines, official_name) {
        return true;
    }
    let lower = line.to_lowercase();
    let words = lower.split_whitespace().count();
    let closed = lower.ends_with([',', ':', '!', '.']);
    SALUTATIONS.iter().any(|s| {
        lower.strip_prefix(s).is_some_and(|rest| {
            let ends_word = rest.chars().next().is_none_or(|c| !c.is_alphanumeric() && !matches!(c, '\'' | '-'));
            let shaped = if *s == "mayor" { words <= 4 && lower.ends_with([',', ':']) } else { closed || words <= 4 };
            ends_word && shaped
        })
    })
}

/// Whether `line`, the text's first, only names the reader: at most four words, each
/// capitalised (or "of", "the", "and", "&"), ending with its only comma, with the text going on
/// after it, and naming a person or a group: a word of `official_name` or a title ("Jane,",
/// "Madam Mayor,", "Ms. Rivera,", "Members of the Council,"). A word that merely opens a
/// sentence ("Understood,", "Per ODOT,", "Last Tuesday,") names nobody.
fn addresses_by_name<'a>(line: &str, mut rest: impl Iterator<Item = &'a str>, official_name: &str) -> bool {
    const TITLES: [&str; 34] = [
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "madam",
        "madame",
        "sir",
        "hon",
        "honorable",
        "mayor",
        "councilmember",
        "councilman",
        "councilwoman",
        "councillor",
        "councilor",
        "council",
        "commissioner",
        "alderman",
        "alderwoman",
        "alderperson",
        "supervisor",
        "chair",
        "chairman",
        "chairwoman",
        "chairperson",
        "members",
        "team",
        "all",
        "everyone",
        "folks",
        "colleagues",
        "friends",
    ];
    let Some(name) = line.strip_suffix(',').filter(|n| !n.contains(',')) else { return false };
    let words: Vec<&str> = name.split_whitespace().collect();
    let capitalised = |w: &&str| w.chars().next().is_some_and(char::is_uppercase);
    let joining = |w: &&str| matches!(*w, "of" | "the" | "and" | "&");
    let official: Vec<String> =
        official_name.split_whitespace().map(str::to_lowercase).filter(|w| w.chars().count() > 1).collect();
    let names_someone = words.iter().any(|w| {
        let w = w.trim_end_matches('.').to_lowercase();
        TITLES.contains(&w.as_str()) || official.contains(&w)
    });
    let shaped = !words.is_empty()
        && words.len() <= 4
        && words.first().is_some_and(capitalised)
        && words.iter().all(|w| capitalised(w) || joining(w))
        && names_someone;
    // The text must go on: on a new paragraph, or on a line that starts a sentence.
    let goes_on = match rest.next() {
        Some("") => rest.any(|l| !l.is_empty()),
        Some(next) => next.chars().next().is_some_and(|c| c.is_uppercase() || !c.is_alphabetic()),
        None => false,
    };
    shaped && goes_on
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_greeting_is_a_short_first_line_that_starts_with_a_salutation() {
        for yes in [
            "Dear Mayor Rivera,\n\nThe answer.",
            "\n  Hi Jane,\nHere it is.",
            "Hello all:\nOur findings.",
            "hello",
            "Good morning, Mayor.\nThe memo is attached.",
            "Greetings from 311!\nText.",
            "Mayor Rivera,\n\nThe answer.",
            "Hey team,\nQuick answer.",
            "**Dear Mayor,**\n\nThe answer.",
            "\u{feff}Dear Mayor,\nThe answer.",
            "Jane,\n\nThe answer.",
            "Madam Mayor,\nThe answer.",
            "Ms. Rivera,\n\n- salt\n- sand",
            "Members of the Council,\n\nThe answer.",
        ] {
            assert!(opens_with_greeting(yes, "Jane Rivera"), "{yes:?}");
        }
        for no in [
            "",
            "   \n\n",
            "Hiring practices vary by city.",
            "Dearborn, MI runs a joint program.",
            "Mayors in three counties buy salt jointly.",
            "Mayor Rivera asked about salt; three counties buy it jointly.",
            "Three counties buy salt jointly.\nDear colleagues in Ohio do the same.",
            "Hello? This first line is a question that goes on for far too long to be a greeting at all.",
            "Hi's are not a thing.",
            "Hi-res maps are attached.",
            "Good day-to-day practice varies.",
            "Mayor Rivera asked three things:",
            "Dear colleagues in Ohio do this",
            "Jane,",
            "However,\n\nthe answer differs.",
            "Yes,\nThree counties do.",
            "In Dayton,\nthe program runs all year.",
            "Short answer,\n\nno.",
            "Dayton, Ohio, and Akron, Ohio,\n\nboth do.",
            "Dayton, Ohio,\n\nruns it.",
            "Understood,\nWe will send it Monday.",
            "Great,\n\nthe contract is attached.",
            "Per ODOT,\nThe bid closes Friday.",
            "Last Tuesday,\nThe committee met.",
            "FYI,\n\nAttached.",
        ] {
            assert!(!opens_with_greeting(no, "Jane Rivera"), "{no:?}");
        }
    }
}
